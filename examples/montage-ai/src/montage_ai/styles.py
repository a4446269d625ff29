"""Cut styles: the editing grammar the planner follows.

A style says how long shots are, how that length varies shot to shot
(``rhythm``) and over the whole edit (``tempo``), how much of each clip's
shaky head and tail is never used, and how shots are joined.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

TRANSITIONS = ("cut", "dissolve")


class UnknownStyleError(LookupError):
    """Raised for a style name that is not in :data:`STYLES`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.choices = sorted(STYLES)
        self.suggestion = _closest(name, self.choices)
        message = f"unknown style '{name}' (choose from {', '.join(self.choices)})"
        if self.suggestion:
            message += f"; did you mean '{self.suggestion}'?"
        super().__init__(message)

    def __str__(self) -> str:  # LookupError quotes its argument otherwise
        return str(self.args[0])


@dataclass(frozen=True)
class CutStyle:
    """Parameters of one cut style. Lengths are in seconds."""

    name: str
    description: str
    shot_length: float
    """Target length of a shot at tempo 1.0 and rhythm 1.0."""
    min_shot: float
    """Shorter shots are never cut: a flash frame reads as a mistake."""
    max_shot: float
    """Longer shots are split, or their footage is left unused."""
    rhythm: tuple[float, ...]
    """Multipliers applied to successive shots, repeating."""
    tempo: tuple[tuple[float, float], ...]
    """Piecewise-linear curve of (progress 0..1, multiplier) over the edit."""
    trim_head: float = 0.0
    """Seconds skipped at the start of every clip (camera settling)."""
    trim_tail: float = 0.0
    """Seconds skipped at the end of every clip (operator reaching for stop)."""
    transition: str = "cut"
    transition_length: float = 0.0
    """Overlap of a dissolve, in seconds; 0 for hard cuts."""

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.min_shot <= self.shot_length <= self.max_shot:
            problems.append("need 0 < min_shot <= shot_length <= max_shot")
        if not self.rhythm or any(r <= 0 for r in self.rhythm):
            problems.append("rhythm needs at least one positive multiplier")
        points = [p for p, _ in self.tempo]
        if len(points) < 2 or points[0] != 0.0 or points[-1] != 1.0:
            problems.append("tempo must start at progress 0.0 and end at 1.0")
        if points != sorted(points):
            problems.append("tempo progress points must be ascending")
        if any(m <= 0 for _, m in self.tempo):
            problems.append("tempo multipliers must be positive")
        if self.trim_head < 0 or self.trim_tail < 0:
            problems.append("trims cannot be negative")
        if self.transition not in TRANSITIONS:
            problems.append(f"transition must be one of {', '.join(TRANSITIONS)}")
        if self.transition == "cut" and self.transition_length != 0:
            problems.append("a hard cut has no transition_length")
        if self.transition == "dissolve" and not 0 < self.transition_length < self.min_shot:
            problems.append("a dissolve needs 0 < transition_length < min_shot")
        if problems:
            raise ValueError(f"invalid style '{self.name}': " + "; ".join(problems))

    def tempo_at(self, progress: float) -> float:
        """The tempo multiplier at ``progress`` (clamped to 0..1) through the edit."""
        progress = min(max(progress, 0.0), 1.0)
        for (p0, m0), (p1, m1) in zip(self.tempo, self.tempo[1:]):
            if progress <= p1:
                if p1 == p0:
                    return m1
                return m0 + (m1 - m0) * (progress - p0) / (p1 - p0)
        return self.tempo[-1][1]

    def shot_target(self, index: int, progress: float) -> float:
        """Desired length of shot number ``index`` at ``progress``, within bounds."""
        length = self.shot_length * self.rhythm[index % len(self.rhythm)] * self.tempo_at(progress)
        return min(max(length, self.min_shot), self.max_shot)


STYLES: dict[str, CutStyle] = {
    style.name: style
    for style in (
        CutStyle(
            name="dynamic",
            description="short punchy shots on a driving rhythm (trailers, sport, music)",
            shot_length=2.0,
            min_shot=0.5,
            max_shot=3.0,
            rhythm=(1.0, 0.5, 0.75, 0.5, 1.25, 0.75, 0.5),
            tempo=((0.0, 1.0), (1.0, 0.8)),
            trim_head=0.3,
            trim_tail=0.2,
        ),
        CutStyle(
            name="calm",
            description="long breathing shots joined by dissolves (travel, documentary)",
            shot_length=6.0,
            min_shot=3.0,
            max_shot=10.0,
            rhythm=(1.0, 1.2, 0.9),
            tempo=((0.0, 1.0), (0.7, 1.0), (1.0, 1.3)),
            trim_head=1.0,
            trim_tail=1.0,
            transition="dissolve",
            transition_length=1.0,
        ),
        CutStyle(
            name="hitchcock",
            description="slow build-up tightening to rapid cuts, released by long held shots (suspense)",
            shot_length=4.0,
            min_shot=0.4,
            max_shot=8.0,
            rhythm=(1.0,),
            tempo=((0.0, 1.6), (0.75, 0.15), (0.8, 2.0), (1.0, 2.0)),
            trim_head=0.5,
            trim_tail=0.5,
        ),
    )
}


def get_style(name: str) -> CutStyle:
    """The style called ``name`` (case-insensitive), or :class:`UnknownStyleError`."""
    try:
        return STYLES[name.strip().lower()]
    except KeyError:
        raise UnknownStyleError(name) from None


def _closest(name: str, choices: list[str]) -> str | None:
    matches = difflib.get_close_matches(name.strip().lower(), choices, n=1, cutoff=0.6)
    return matches[0] if matches else None
