"""The ``montage-ai`` command line.

Exit status: 0 on success, 1 when a plan or job failed, 2 for usage errors
(an unknown style, a malformed clip), as argparse does.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from . import __version__, worker
from .planner import DEFAULT_CLIPS, DEFAULT_FPS, parse_clips, plan_cuts
from .render import FORMATS, render
from .styles import STYLES, UnknownStyleError, get_style
from .timecode import SUPPORTED_FPS

DEFAULT_SPOOL = "/var/spool/montage-ai"
DEFAULT_HEARTBEAT = "/tmp/montage-ai.heartbeat"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="montage-ai",
        description="Plan the cuts of a video montage in a chosen editing style.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    default_style = os.environ.get("CUT_STYLE") or "dynamic"

    run = commands.add_parser(
        "run",
        help="print the cut plan for a set of clips",
        description="Print the cut plan (edit decision list) for a set of clips.",
    )
    run.add_argument(
        "--style",
        default=default_style,
        help=f"cut style: {', '.join(sorted(STYLES))} (default: $CUT_STYLE or dynamic)",
    )
    run.add_argument(
        "--clips",
        nargs="+",
        metavar="SECONDS|NAME=SECONDS",
        help="durations of the source clips, in order (default: a demo set of %d clips)" % len(DEFAULT_CLIPS),
    )
    run.add_argument("--fps", type=int, default=DEFAULT_FPS, choices=SUPPORTED_FPS, help="frame rate (default: %(default)s)")
    run.add_argument("--max-duration", type=float, metavar="SECONDS", help="cap the length of the edit")
    run.add_argument("--format", choices=sorted(FORMATS), default="text", help="output format (default: %(default)s)")
    run.add_argument("-o", "--output", type=Path, metavar="FILE", help="write the plan to FILE instead of stdout")
    run.set_defaults(handler=cmd_run)

    styles = commands.add_parser("styles", help="list the cut styles", description="List the cut styles.")
    styles.set_defaults(handler=cmd_styles)

    work = commands.add_parser(
        "worker",
        help="plan every job dropped into a spool directory",
        description="Poll SPOOL/inbox for *.json jobs and write plans to SPOOL/outbox.",
    )
    work.add_argument("--spool", type=Path, default=Path(os.environ.get("MONTAGE_SPOOL") or DEFAULT_SPOOL), help="spool root (default: $MONTAGE_SPOOL or %(default)s)")
    work.add_argument("--style", default=default_style, help="style for jobs that name none (default: $CUT_STYLE or dynamic)")
    work.add_argument("--interval", type=float, default=5.0, metavar="SECONDS", help="poll interval (default: %(default)s)")
    work.add_argument("--heartbeat", type=Path, default=Path(os.environ.get("MONTAGE_HEARTBEAT") or DEFAULT_HEARTBEAT), help="file touched every poll, read by `healthcheck` (default: %(default)s)")
    work.add_argument("--once", action="store_true", help="process the inbox once and exit (1 if a job failed)")
    work.set_defaults(handler=cmd_worker)

    health = commands.add_parser(
        "healthcheck",
        help="exit 0 while the worker's heartbeat is fresh (for probes)",
        description="Exit 0 if the worker's heartbeat is younger than --max-age, else 1.",
    )
    health.add_argument("--heartbeat", type=Path, default=Path(os.environ.get("MONTAGE_HEARTBEAT") or DEFAULT_HEARTBEAT), help="heartbeat file (default: %(default)s)")
    health.add_argument("--max-age", type=float, default=30.0, metavar="SECONDS", help="oldest acceptable heartbeat (default: %(default)s)")
    health.set_defaults(handler=cmd_healthcheck)

    parser.set_defaults(subparsers={"run": run, "worker": work})
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    style = _style_or_usage_error(args, "run")
    try:
        clips = parse_clips(args.clips) if args.clips else parse_clips(str(d) for d in DEFAULT_CLIPS)
    except ValueError as err:
        args.subparsers["run"].error(str(err))
    if args.max_duration is not None and not args.max_duration > 0:
        args.subparsers["run"].error("--max-duration must be a positive number of seconds")
    edl = plan_cuts(clips, style, fps=args.fps, max_duration=args.max_duration)
    text = render(edl, args.format)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output} ({len(edl.cuts)} shots, {edl.duration_frames / edl.fps:.2f}s)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_styles(args: argparse.Namespace) -> int:
    width = max(len(name) for name in STYLES)
    for name in sorted(STYLES):
        s = STYLES[name]
        joins = "hard cuts" if s.transition == "cut" else f"{s.transition_length:g}s {s.transition}s"
        print(f"{name:<{width}}  {s.description}")
        print(f"{'':<{width}}  shots {s.min_shot:g}-{s.max_shot:g}s around {s.shot_length:g}s, {joins}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    _style_or_usage_error(args, "worker")
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        print(f"montage-ai worker: got signal {signum}, finishing the current job", flush=True)
        stop.set()

    # SIGTERM is how Kubernetes asks a pod to stop: finish the job at hand,
    # then exit 0 within the grace period instead of being killed mid-write.
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        failed = worker.run(
            worker.Spool(args.spool),
            default_style=args.style,
            heartbeat=args.heartbeat,
            interval=args.interval,
            stop=stop,
            once=args.once,
            log=lambda line: print(line, flush=True),
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 1 if args.once and failed else 0


def cmd_healthcheck(args: argparse.Namespace) -> int:
    ok, detail = worker.is_healthy(args.heartbeat, args.max_age)
    print(("healthy: " if ok else "unhealthy: ") + detail, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def _style_or_usage_error(args: argparse.Namespace, command: str):
    try:
        return get_style(args.style)
    except UnknownStyleError as err:
        args.subparsers[command].error(str(err))  # exits with status 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except BrokenPipeError:
        # `montage-ai run | head`: the reader left; not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
