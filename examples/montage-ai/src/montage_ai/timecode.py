"""SMPTE-style non-drop-frame timecode (``HH:MM:SS:FF``).

The planner counts in whole frames so that a plan is exact and identical on
every machine; seconds only appear at the edges (input and display).
"""

from __future__ import annotations

import math

SUPPORTED_FPS = (24, 25, 30, 48, 50, 60)


def check_fps(fps: int) -> int:
    """``fps`` if it is a supported integer frame rate, else ``ValueError``."""
    if isinstance(fps, bool) or not isinstance(fps, int) or fps not in SUPPORTED_FPS:
        choices = ", ".join(str(f) for f in SUPPORTED_FPS)
        raise ValueError(f"unsupported frame rate {fps!r} (choose from {choices})")
    return fps


def to_frames(seconds: float, fps: int) -> int:
    """``seconds`` as the nearest whole number of frames."""
    return round(seconds * fps)


def frames_within(start: float, end: float, fps: int) -> tuple[int, int]:
    """The whole frames that lie between ``start`` and ``end`` seconds.

    A clip of 7.5 s at 25 fps has 187 whole frames, not 188: rounding a
    boundary outwards would point at footage that is not there.
    """
    eps = 1e-9  # 0.1 * 30 is 3.0000000000000004
    return math.ceil(start * fps - eps), math.floor(end * fps + eps)


def to_seconds(frames: int, fps: int) -> float:
    return frames / fps


def timecode(frames: int, fps: int) -> str:
    """Format a frame count as ``HH:MM:SS:FF`` (non-drop-frame)."""
    if frames < 0:
        raise ValueError(f"negative frame count {frames}")
    seconds, ff = divmod(frames, fps)
    minutes, ss = divmod(seconds, 60)
    hh, mm = divmod(minutes, 60)
    return f"{hh:02d}:{mm:02d}:{ss:02d}:{ff:02d}"


def parse_timecode(text: str, fps: int) -> int:
    """The frame count of an ``HH:MM:SS:FF`` timecode."""
    parts = text.strip().split(":")
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        raise ValueError(f"not a timecode: {text!r} (expected HH:MM:SS:FF)")
    hh, mm, ss, ff = (int(p) for p in parts)
    if mm >= 60 or ss >= 60 or ff >= fps:
        raise ValueError(f"timecode out of range at {fps} fps: {text!r}")
    return ((hh * 60 + mm) * 60 + ss) * fps + ff
