"""The cluster worker: plan every job dropped into a spool directory.

Layout under the spool root::

    inbox/NAME.json    jobs waiting (written by whoever wants a plan)
    work/NAME.json     a job a worker has claimed
    outbox/NAME.EXT    finished plans (.txt, .json or .edl)
    done/NAME.json     jobs that were planned
    failed/NAME.json   jobs that could not be planned, with NAME.error

A job is claimed by renaming it from ``inbox/`` to ``work/``; rename is
atomic, so several replicas can share one spool volume and each job is
planned once. Results are written to a temporary name and renamed into
place, so a reader never sees half a plan.

A job file looks like::

    {"style": "calm", "clips": [12.5, {"name": "beach.mov", "duration": 30}],
     "fps": 25, "max_duration": 60, "format": "edl"}

Only ``clips`` is required; ``style`` defaults to the worker's style.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .planner import DEFAULT_FPS, Clip, plan_cuts
from .render import FORMATS, render
from .styles import get_style

EXTENSIONS = {"text": ".txt", "json": ".json", "edl": ".edl"}
JOB_KEYS = {"style", "clips", "fps", "max_duration", "format"}


@dataclass(frozen=True)
class Spool:
    root: Path

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def done(self) -> Path:
        return self.root / "done"

    @property
    def failed(self) -> Path:
        return self.root / "failed"

    def ensure(self) -> "Spool":
        for d in (self.inbox, self.work, self.outbox, self.done, self.failed):
            d.mkdir(parents=True, exist_ok=True)
        return self


def plan_job(job: dict, default_style: str) -> tuple[str, str]:
    """Plan one decoded job; returns ``(format, rendered plan)``."""
    if not isinstance(job, dict):
        raise ValueError("a job must be a JSON object")
    unknown = sorted(set(job) - JOB_KEYS)
    if unknown:
        raise ValueError(f"unknown job keys: {', '.join(unknown)} (allowed: {', '.join(sorted(JOB_KEYS))})")
    raw_clips = job.get("clips")
    if not isinstance(raw_clips, list) or not raw_clips:
        raise ValueError("'clips' must be a non-empty list of durations or {name, duration} objects")
    clips = []
    for i, item in enumerate(raw_clips):
        if isinstance(item, dict):
            clips.append(Clip(str(item.get("name", f"clip{i + 1:02d}")), _number(item.get("duration"), "duration")))
        else:
            clips.append(Clip(f"clip{i + 1:02d}", _number(item, "clip duration")))
    fmt = job.get("format", "text")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format '{fmt}' (choose from {', '.join(FORMATS)})")
    style = get_style(str(job.get("style", default_style)))
    max_duration = job.get("max_duration")
    edl = plan_cuts(
        clips,
        style,
        fps=job.get("fps", DEFAULT_FPS),
        max_duration=None if max_duration is None else _number(max_duration, "max_duration"),
    )
    return fmt, render(edl, fmt)


def process_once(spool: Spool, default_style: str, log: Callable[[str], None] = print) -> tuple[int, int]:
    """Plan every job now in the inbox; returns ``(planned, failed)``."""
    spool.ensure()
    planned = failed = 0
    for job_path in sorted(spool.inbox.glob("*.json")):
        claimed = spool.work / job_path.name
        try:
            os.rename(job_path, claimed)
        except FileNotFoundError:
            continue  # another replica claimed it first
        try:
            job = json.loads(claimed.read_text(encoding="utf-8"))
            fmt, text = plan_job(job, default_style)
        except (ValueError, LookupError, OSError) as err:
            # json.JSONDecodeError is a ValueError; UnknownStyleError a LookupError.
            _write_atomic(spool.failed / f"{claimed.stem}.error", f"{err}\n")
            os.replace(claimed, spool.failed / claimed.name)
            log(f"failed {job_path.name}: {err}")
            failed += 1
            continue
        result = spool.outbox / f"{claimed.stem}{EXTENSIONS[fmt]}"
        _write_atomic(result, text)
        os.replace(claimed, spool.done / claimed.name)
        log(f"planned {job_path.name} -> {result.name}")
        planned += 1
    return planned, failed


def beat(path: Path, now: float | None = None) -> None:
    """Record that the worker loop is alive (read by :func:`is_healthy`)."""
    _write_atomic(path, f"{time.time() if now is None else now:.3f}\n")


def is_healthy(path: Path, max_age: float, now: float | None = None) -> tuple[bool, str]:
    """Whether the heartbeat at ``path`` is younger than ``max_age`` seconds."""
    try:
        last = float(path.read_text(encoding="utf-8").strip())
    except FileNotFoundError:
        return False, f"no heartbeat at {path} yet"
    except (OSError, ValueError) as err:
        return False, f"unreadable heartbeat at {path}: {err}"
    age = (time.time() if now is None else now) - last
    if age > max_age:
        return False, f"last heartbeat {age:.0f}s ago (limit {max_age:g}s)"
    return True, f"last heartbeat {max(age, 0):.0f}s ago"


def run(
    spool: Spool,
    *,
    default_style: str,
    heartbeat: Path,
    interval: float,
    stop: threading.Event,
    once: bool = False,
    log: Callable[[str], None] = print,
) -> int:
    """Poll the spool until ``stop`` is set (or once); returns jobs failed."""
    get_style(default_style)  # fail at start-up, not on the first job
    spool.ensure()
    log(f"montage-ai worker: spool {spool.root}, default style {default_style}, every {interval:g}s")
    failed_total = 0
    while True:
        beat(heartbeat)
        _, failed = process_once(spool, default_style, log)
        failed_total += failed
        if once or stop.wait(interval):
            break
    log("montage-ai worker: stopped")
    return failed_total


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number, got {value!r}")
    return float(value)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
