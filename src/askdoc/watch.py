"""Keep an index current while its corpus changes: bursts of file events (``watchfiles``) become
one build each, one build at a time, and a stop request lands only between a build's commits.

Used by ``askdoc index --watch``, the chat's watch toggle and programs (docs/api.md).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from askdoc.errors import BuildStopped, CorpusError, IndexBusyError
from askdoc.ingest import SUPPORTED_SUFFIXES

if TYPE_CHECKING:
    from askdoc.config import Settings
    from askdoc.engine import Engine
    from askdoc.index.writer import BuildReport, Progress

QUIET_MS = 400
"""A burst of changes (an editor's save, a copy of many files) ends after this much quiet."""
LONGEST_BURST_MS = 5000
"""A burst that goes on longer is built anyway, and the rest in the next build."""
TICK_MS = 250
"""How often the watcher wakes without changes (the first build runs at the first wake-up)."""
RETRY_S = 5.0
RESCAN_S = 20.0
"""Without any event for this long, a build checks the corpus anyway (it embeds nothing when
nothing changed, and says nothing): the file system does not always report a change, e.g. a
file written a moment after its new folder was created, or a network drive."""
"""A build that found the index busy (or no documents) is tried again after this long, or at
the next change."""


@dataclass(frozen=True)
class WatchedBuild:
    """One build run by the watcher: its report, or the one-line reason it did not run.
    ``changed`` holds the corpus paths whose changes started it (empty for the first build)."""

    report: BuildReport | None
    changed: tuple[str, ...] = ()
    error: str = ""

    @property
    def worth_telling(self) -> bool:
        """The build changed the index, skipped a file that changed, or failed."""
        if self.report is None:
            return True
        changed = set(self.changed)
        return self.report.changed or any(s.path in changed for s in self.report.skipped)


class CorpusFilter:
    """Which file events matter: documents (by suffix) and folders under the corpus, not hidden
    names, editor droppings, or the index folder when it lives inside the corpus."""

    def __init__(self, corpus: Path, index: Path) -> None:
        from watchfiles import DefaultFilter

        self.root = str(corpus)
        self.index = str(index)
        self.default = DefaultFilter()

    def __call__(self, change: object, path: str) -> bool:
        if path == self.index or path.startswith(self.index + os.sep):
            return False
        rel = os.path.relpath(path, self.root)
        if rel.startswith("..") or any(part.startswith(".") for part in rel.split(os.sep)):
            return False
        if not self.default(change, path):  # type: ignore[arg-type]
            return False
        return path.lower().endswith(SUPPORTED_SUFFIXES) or not os.path.isfile(path)


def corpus_changes(
    settings: Settings,
    stop: threading.Event,
    quiet_ms: int = QUIET_MS,
    longest_ms: int = LONGEST_BURST_MS,
    tick_ms: int = TICK_MS,
) -> Iterator[frozenset[str]]:
    """The corpus paths changed in each burst, until ``stop`` is set; an empty set after each
    ``tick_ms`` without changes. Watching starts before the first set is yielded, so a caller
    that builds on that first (possibly empty) set misses nothing."""
    import watchfiles

    root = settings.corpus.resolve()
    if not root.is_dir():
        raise CorpusError(f"corpus folder {settings.corpus} does not exist or is not a folder")
    changes = watchfiles.watch(
        root,
        watch_filter=CorpusFilter(root, settings.index.resolve()),
        debounce=longest_ms,
        step=quiet_ms,
        stop_event=stop,
        rust_timeout=tick_ms,
        yield_on_timeout=True,
        raise_interrupt=False,
    )
    for batch in changes:
        yield frozenset(os.path.relpath(path, root) for _, path in batch)


def stoppable(stop: threading.Event, progress: Progress | None = None) -> Progress:
    """A build progress callback that raises BuildStopped once ``stop`` is set. A build reports
    progress only between its commits (before each file is read, between embedding batches),
    never while it publishes, so a stopped build leaves the last published index in force and
    the next build resumes from what it staged."""

    def report(stage: str, done: int, total: int) -> None:
        if stop.is_set():
            raise BuildStopped("stopped before this build was published; the index is unchanged")
        if progress is not None:
            progress(stage, done, total)

    return report


def keep_current(
    engine: Engine,
    stop: threading.Event,
    on_build: Callable[[WatchedBuild], None],
    progress: Callable[[], Progress | None] | None = None,
    full: bool = False,
    quiet_ms: int = QUIET_MS,
) -> bool:
    """Build once watching has started, then after every burst of changes under the corpus,
    until ``stop`` is set.

    Each build's outcome goes to ``on_build``. A build that finds the index busy with another
    build, or the corpus without documents, is reported and tried again a few seconds later (or
    at the next change); any other AskdocError ends the watch. Returns False when ``stop``
    interrupted a build (nothing of it was published), True when it came between builds.
    ``progress()`` gives a fresh progress callback for each build (e.g. a progress bar), or None.
    """
    due, retry_at, checked = True, 0.0, time.monotonic()
    try:
        for changed in corpus_changes(engine.settings, stop, quiet_ms):
            due = due or bool(changed) or time.monotonic() - checked >= RESCAN_S
            if not due or stop.is_set() or (not changed and time.monotonic() < retry_at):
                continue
            callback = stoppable(stop, progress() if progress is not None else None)
            paths = tuple(sorted(changed))
            try:
                report = engine.build(full=full, progress=callback)
            except (IndexBusyError, CorpusError) as exc:
                retry_at = time.monotonic() + RETRY_S
                on_build(WatchedBuild(None, paths, " ".join(str(exc).split())))
                continue
            due = full = False
            checked = time.monotonic()
            on_build(WatchedBuild(report, paths))
    except BuildStopped:
        return False
    return True
