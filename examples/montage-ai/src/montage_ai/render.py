"""Turn an :class:`~montage_ai.planner.EditDecisionList` into text.

Three formats: ``text`` (a table for people), ``json`` (for programs) and
``edl`` (CMX 3600, which every NLE imports: Resolve, Premiere, Avid).
"""

from __future__ import annotations

import json

from .planner import EditDecisionList
from .timecode import timecode

#: CMX 3600 record timecodes conventionally start at one hour.
EDL_RECORD_START_SECONDS = 3600


def render_text(edl: EditDecisionList) -> str:
    fps = edl.fps
    lines = [
        f"montage-ai plan: style {edl.style}, {len(edl.clips)} clips, {fps} fps",
        f"{'#':>3}  {'clip':<12} {'source in':<11}  {'source out':<11}  "
        f"{'record in':<11}  {'record out':<11}  {'length':>7}  transition",
    ]
    for cut in edl.cuts:
        transition = cut.transition
        if cut.transition_frames:
            transition += f" {cut.transition_frames / fps:g}s"
        lines.append(
            f"{cut.number:>3}  {cut.clip_name:<12} "
            f"{timecode(cut.source_in, fps)}  {timecode(cut.source_out, fps)}  "
            f"{timecode(cut.record_in, fps)}  {timecode(cut.record_out, fps)}  "
            f"{cut.length / fps:>6.2f}s  {transition}"
        )
    total = edl.duration_frames
    lines.append(f"total {timecode(total, fps)} ({total / fps:.2f}s) in {len(edl.cuts)} shots")
    for s in edl.skipped:
        lines.append(f"skipped {s.clip_name}: {s.reason}")
    return "\n".join(lines) + "\n"


def render_json(edl: EditDecisionList) -> str:
    return json.dumps(edl.to_dict(), indent=2, sort_keys=True) + "\n"


def render_edl(edl: EditDecisionList, title: str | None = None) -> str:
    """CMX 3600.

    A dissolve is written the standard way: the outgoing event ends where the
    dissolve starts (the rest of it plays from its handle), and the incoming
    event is a pair of lines, a zero-length cut on the outgoing reel and then
    the ``D`` event with the dissolve length in frames.
    """
    fps = edl.fps
    offset = EDL_RECORD_START_SECONDS * fps

    def tc(frames: int) -> str:
        return timecode(frames, fps)

    lines = [f"TITLE: {title or f'montage-ai {edl.style}'}", "FCM: NON-DROP FRAME", ""]
    for k, cut in enumerate(edl.cuts):
        following = edl.cuts[k + 1] if k + 1 < len(edl.cuts) else None
        handle = following.transition_frames if following is not None else 0
        src = f"{tc(cut.source_in)} {tc(cut.source_out - handle)}"
        rec = f"{tc(cut.record_in + offset)} {tc(cut.record_out - handle + offset)}"
        reel = _reel(cut.clip)
        if cut.transition == "dissolve" and k > 0:
            previous = edl.cuts[k - 1]
            out_point = tc(previous.source_out - cut.transition_frames)
            rec_in = tc(cut.record_in + offset)
            lines.append(
                f"{cut.number:03d}  {_reel(previous.clip):<8} V     C        "
                f"{out_point} {out_point} {rec_in} {rec_in}"
            )
            lines.append(f"{cut.number:03d}  {reel:<8} V     D    {cut.transition_frames:03d} {src} {rec}")
        else:
            lines.append(f"{cut.number:03d}  {reel:<8} V     C        {src} {rec}")
        lines.append(f"* FROM CLIP NAME: {cut.clip_name}")
    return "\n".join(lines) + "\n"


def _reel(clip: int) -> str:
    # CMX 3600 reel names are at most 8 characters; the clip name is kept
    # in the FROM CLIP NAME comment.
    return f"R{clip + 1:03d}"


FORMATS = {"text": render_text, "json": render_json, "edl": render_edl}


def render(edl: EditDecisionList, fmt: str = "text") -> str:
    try:
        return FORMATS[fmt](edl)
    except KeyError:
        raise ValueError(f"unknown format '{fmt}' (choose from {', '.join(FORMATS)})") from None
