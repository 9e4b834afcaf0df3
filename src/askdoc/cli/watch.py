"""``askdoc index --watch``: keep the index current until Ctrl+C (or SIGTERM), which stops it
between two commits of a build; a second Ctrl+C stops at once (still crash-safe)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from types import FrameType

from askdoc.config import Settings
from askdoc.engine import Engine
from askdoc.index.writer import Progress
from askdoc.render import console, progress_bars, report_text, safe
from askdoc.watch import WatchedBuild, keep_current


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stop``; a second one raises KeyboardInterrupt."""

    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("askdoc: stopping at the next safe point (Ctrl+C again: at once)", file=sys.stderr)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cmd_watch(args: argparse.Namespace, settings: Settings) -> int:
    engine = Engine(settings)
    out = console()
    stop = threading.Event()
    bars = ExitStack()
    first = True

    def progress() -> Progress | None:
        bars.close()  # the previous build's bar
        return bars.enter_context(progress_bars(sys.stderr.isatty()))

    def on_build(build: WatchedBuild) -> None:
        nonlocal first
        bars.close()
        stamp = "" if first else time.strftime("%H:%M:%S ")
        if build.report is None:
            print(f"askdoc: {stamp}{safe(build.error)}", file=sys.stderr, flush=True)
        elif first or build.worth_telling:
            out.print(stamp, report_text(build.report, settings), sep="", end="")
        if first:
            print(
                f"watching {safe(str(settings.corpus))} for changes (Ctrl+C stops)",
                file=sys.stderr,
                flush=True,
            )
        first = False
        sys.stdout.flush()

    with stop_on_signals(stop):
        try:
            finished = keep_current(engine, stop, on_build, progress, full=args.full)
        finally:
            bars.close()
    if finished:
        print("askdoc: stopped watching", file=sys.stderr)
    else:
        print(
            "askdoc: stopped watching before a build was published; the index is as of the "
            "last build (the next `askdoc index` resumes)",
            file=sys.stderr,
        )
    return 0
