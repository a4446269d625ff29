"""Plan an edit: which part of which clip goes where on the timeline.

The planner walks the clips round-robin, so consecutive shots come from
different clips (a montage, not a string of jump cuts), and takes from each
clip the next shot whose length the style asks for at that point of the
edit. Everything is counted in frames: the same clips, style and frame rate
always give the same plan.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

from .styles import CutStyle
from .timecode import check_fps, frames_within, to_frames

DEFAULT_FPS = 25

#: Durations (seconds) used when no clips are given: a typical card dump,
#: including one clip too short to use.
DEFAULT_CLIPS = (12.0, 7.5, 20.0, 0.8, 9.0, 15.5)


@dataclass(frozen=True)
class Clip:
    name: str
    duration: float
    """Length of the source clip in seconds."""

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a clip needs a name")
        if not math.isfinite(self.duration) or self.duration <= 0:
            raise ValueError(f"clip '{self.name}' needs a positive duration, got {self.duration}")

    @classmethod
    def parse(cls, text: str, index: int) -> "Clip":
        """A clip from ``SECONDS`` or ``NAME=SECONDS``; unnamed clips are ``clipNN``."""
        name, sep, value = text.rpartition("=")
        if not sep:
            name = f"clip{index + 1:02d}"
        try:
            duration = float(value)
        except ValueError:
            raise ValueError(f"invalid clip {text!r}: expected SECONDS or NAME=SECONDS") from None
        return cls(name.strip(), duration)


@dataclass(frozen=True)
class Cut:
    """One event of the edit. Frame numbers; ``*_out`` is exclusive."""

    number: int
    clip: int
    """Index of the source clip in the plan's ``clips``."""
    clip_name: str
    source_in: int
    source_out: int
    record_in: int
    record_out: int
    transition: str
    """How this shot is joined to the previous one (the first is a ``cut``)."""
    transition_frames: int

    @property
    def length(self) -> int:
        return self.source_out - self.source_in


@dataclass(frozen=True)
class Skipped:
    clip: int
    clip_name: str
    reason: str


@dataclass(frozen=True)
class EditDecisionList:
    style: str
    fps: int
    clips: tuple[Clip, ...]
    cuts: tuple[Cut, ...]
    skipped: tuple[Skipped, ...]

    @property
    def duration_frames(self) -> int:
        return self.cuts[-1].record_out if self.cuts else 0

    def to_dict(self) -> dict:
        return {
            "style": self.style,
            "fps": self.fps,
            "duration_frames": self.duration_frames,
            "duration_seconds": round(self.duration_frames / self.fps, 3),
            "clips": [asdict(c) for c in self.clips],
            "cuts": [asdict(c) for c in self.cuts],
            "skipped": [asdict(s) for s in self.skipped],
        }


def parse_clips(values: Iterable[str]) -> tuple[Clip, ...]:
    return tuple(Clip.parse(v, i) for i, v in enumerate(values))


def plan_cuts(
    clips: Sequence[Clip | float],
    style: CutStyle,
    *,
    fps: int = DEFAULT_FPS,
    max_duration: float | None = None,
) -> EditDecisionList:
    """Plan an edit of ``clips`` in ``style``.

    ``clips`` are :class:`Clip` objects or bare durations in seconds.
    ``max_duration`` (seconds) caps the length of the finished edit; without
    it, all usable footage is cut.
    """
    check_fps(fps)
    clips = tuple(c if isinstance(c, Clip) else Clip(f"clip{i + 1:02d}", float(c)) for i, c in enumerate(clips))
    if not clips:
        raise ValueError("no clips to plan")
    if max_duration is not None and not (math.isfinite(max_duration) and max_duration > 0):
        raise ValueError(f"max_duration must be a positive number of seconds, got {max_duration}")

    min_f = max(1, to_frames(style.min_shot, fps))
    max_f = to_frames(style.max_shot, fps)
    overlap_f = to_frames(style.transition_length, fps) if style.transition == "dissolve" else 0
    limit_f = None if max_duration is None else to_frames(max_duration, fps)

    cursor: dict[int, int] = {}
    end: dict[int, int] = {}
    skipped = []
    for i, clip in enumerate(clips):
        start, stop = frames_within(style.trim_head, clip.duration - style.trim_tail, fps)
        if stop - start < min_f:
            skipped.append(
                Skipped(
                    i,
                    clip.name,
                    f"shorter than {style.min_shot:g}s after trimming "
                    f"{style.trim_head:g}s head and {style.trim_tail:g}s tail",
                )
            )
            continue
        cursor[i], end[i] = start, stop

    # The style's tempo curve is a function of progress through the finished
    # edit, whose length depends on the shots chosen: plan against the
    # footage available, then re-plan against the length that came out
    # until it stops changing (two or three passes in practice).
    usable_f = sum(end[i] - cursor[i] for i in cursor)
    planned_f = usable_f if limit_f is None else min(usable_f, limit_f)
    cuts: list[Cut] = []
    for _ in range(_MAX_PASSES):
        cuts = _cut(clips, style, fps, dict(cursor), dict(end), planned_f, limit_f, min_f, max_f, overlap_f)
        length = cuts[-1].record_out if cuts else 0
        if length in (0, planned_f):
            break
        planned_f = length
    return EditDecisionList(style.name, fps, clips, tuple(cuts), tuple(skipped))


_MAX_PASSES = 6


def _cut(clips, style, fps, cursor, end, planned_f, limit_f, min_f, max_f, overlap_f) -> list[Cut]:
    """One planning pass. ``cursor``/``end``: usable frame range per clip."""
    order = sorted(cursor)
    single = len(order) == 1
    cuts: list[Cut] = []
    record = 0
    last = None
    while True:
        # Round-robin from the clip after the last one used. Two shots of one
        # clip back to back are a jump cut, so once only the last-used clip
        # has footage left the edit ends (unless it is the only clip).
        start = 0 if last is None else order.index(last) + 1
        candidates = order[start:] + order[:start]
        i = next((c for c in candidates if end[c] - cursor[c] >= min_f and (c != last or single)), None)
        if i is None:
            return cuts
        remaining = end[i] - cursor[i]
        target = to_frames(style.shot_target(len(cuts), record / max(planned_f, 1)), fps)
        if 2 * remaining < target:
            # A scrap far shorter than the shot the style asks for here would
            # break the rhythm (and make a limp ending): leave it unused.
            end[i] = cursor[i]
            continue
        length = min(target, remaining)
        if remaining - length < min_f:
            # Absorb a tail too short to ever be a shot, when allowed.
            length = min(remaining, max_f)
        overlap = overlap_f if cuts else 0
        record_in = record - overlap
        if limit_f is not None:
            room = limit_f - record_in
            if room < min_f:
                return cuts
            length = min(length, room)
        cuts.append(
            Cut(
                number=len(cuts) + 1,
                clip=i,
                clip_name=clips[i].name,
                source_in=cursor[i],
                source_out=cursor[i] + length,
                record_in=record_in,
                record_out=record_in + length,
                transition=style.transition if overlap else "cut",
                transition_frames=overlap,
            )
        )
        record = record_in + length
        cursor[i] += length
        last = i
