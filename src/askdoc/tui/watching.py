"""The chat's watched corpus (f5): a watcher (a thread worker) reports bursts of file changes and
the app runs its own build for them, one at a time, with a one-line note when the index
changed."""

from __future__ import annotations

import threading
import time

from textual import work

from askdoc.errors import AskdocError
from askdoc.index.writer import BuildReport
from askdoc.tui import texts
from askdoc.tui.chat import ChatBase
from askdoc.tui.messages import CorpusChanged, WatchEnded
from askdoc.watch import RETRY_S, WatchedBuild, corpus_changes

MAX_NAMES = 3
"""Files named in a watch note before "and N more"."""
IDLE_POST_S = 1.0
"""While nothing changes, the watcher wakes the app at most this often (for retries)."""


def watch_summary(report: BuildReport) -> str:
    """``index updated: added a.txt, b.md · removed c.txt · 12 documents`` (one line)."""
    parts = []
    for label, paths in (
        ("added", report.added),
        ("updated", report.updated),
        ("removed", report.removed),
        ("renamed", tuple(f"{old} → {new}" for old, new in report.renamed)),
        ("skipped", tuple(s.path for s in report.skipped)),
    ):
        if paths:
            shown = ", ".join(paths[:MAX_NAMES])
            more = f" and {len(paths) - MAX_NAMES} more" if len(paths) > MAX_NAMES else ""
            parts.append(f"{label} {shown}{more}")
    parts.append(f"{report.documents} documents")
    return "index updated: " + " · ".join(parts)


class WatchingChat(ChatBase):
    """ChatBase plus the watch toggle. The app supplies ``action_rebuild`` (its build, with the
    progress row) and calls ``watched_build_finished`` when a build ends."""

    watch_at_start = False
    """Turn watching on once the app is mounted (``askdoc --watch``)."""
    _watch_stop: threading.Event | None = None
    _watch_due = False
    _watch_build = False
    _watch_changed: frozenset[str] = frozenset()
    _watch_error = ""
    _watch_retry_at = 0.0

    def action_rebuild(self, full: bool = False) -> None:
        raise NotImplementedError

    def action_toggle_watch(self) -> None:
        """Start or stop following the corpus."""
        corpus = texts.one_line(str(self.settings.corpus))
        if self.watching:
            self.stop_watching()
            self.notify(f"Stopped watching {corpus}.", markup=False)
        else:
            stop = self._watch_stop = threading.Event()
            self.watching = True
            self._watch_due = True  # catch up with what changed while nobody watched
            self._watch(stop)
            self.notify(
                f"Watching {corpus}: the index follows its changes (f5 stops).", markup=False
            )
        self.show_state()

    def stop_watching(self) -> None:
        if self._watch_stop is not None:
            self._watch_stop.set()
        self._watch_stop = None
        self.watching = self._watch_due = False

    @work(thread=True, group="watch", exit_on_error=False)
    def _watch(self, stop: threading.Event) -> None:
        """Post each burst of changes until ``stop`` is set (by f5, or when the app unmounts)."""
        posted = 0.0  # the first wake-up is always posted: it starts the catch-up build
        try:
            for changed in corpus_changes(self.settings, stop):
                if changed or time.monotonic() - posted >= IDLE_POST_S:
                    posted = time.monotonic()
                    self.post_message(CorpusChanged(changed, stop))
        except AskdocError as exc:
            self.post_message(WatchEnded(str(exc), stop))
        except Exception as exc:  # shown in the app rather than lost with the worker
            self.post_message(WatchEnded(f"unexpected error: {type(exc).__name__}: {exc}", stop))

    def on_corpus_changed(self, message: CorpusChanged) -> None:
        if message.watcher is not self._watch_stop:
            return  # from a watcher turned off since
        if message.paths:
            self._watch_due = True
            self._watch_changed |= message.paths
        if not self._watch_due or self.building:
            return  # a build under way: the next wake-up starts ours
        if not message.paths and time.monotonic() < self._watch_retry_at:
            return
        self._watch_due = False
        self._watch_build = True
        self.action_rebuild()

    def on_watch_ended(self, message: WatchEnded) -> None:
        if message.watcher is not self._watch_stop:
            return
        self.stop_watching()
        self.add_note(f"Stopped watching the corpus: {message.error}", "error")
        self.show_state()

    def watched_build_finished(self, report: BuildReport | None, error: str) -> bool:
        """After a build: if the watcher started it, note what changed (nothing when nothing
        did; a failure once, then retried) and return True; else False."""
        if not self._watch_build:
            return False
        self._watch_build = False
        changed, self._watch_changed = self._watch_changed, frozenset()
        if report is None:
            self._watch_due = self.watching
            self._watch_retry_at = time.monotonic() + RETRY_S
            if error != self._watch_error:
                self.add_note(f"The index was not updated: {error}", "error")
            self._watch_error = error
            return True
        self._watch_error = ""
        if WatchedBuild(report, tuple(sorted(changed))).worth_telling:
            self.add_note(watch_summary(report), "muted")
        return True

    def on_unmount(self) -> None:
        self.stop_watching()
