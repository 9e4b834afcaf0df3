"""The watched corpus (``askdoc.watch``): files added, edited, renamed and deleted under a running
watcher reach the index; a stop lands between a build's commits; a busy index is retried."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from watchfiles import Change

from askdoc import watch
from askdoc.config import Settings
from askdoc.engine import Engine
from askdoc.errors import BuildStopped
from askdoc.index.lock import IndexLock
from askdoc.index.manifest import read_manifest
from askdoc.index.schema import DB_NAME, connect, list_documents
from askdoc.watch import CorpusFilter, WatchedBuild, keep_current, stoppable
from tests.conftest import FakeEmbedder

WAIT = 60.0
"""Longest a test waits for the watcher to catch up (a hang fails instead of blocking)."""


class Watcher:
    """``keep_current`` on a thread, with every WatchedBuild in a queue."""

    def __init__(self, engine: Engine, **kwargs: object) -> None:
        self.engine = engine
        self.stop = threading.Event()
        self.builds: queue.Queue[WatchedBuild] = queue.Queue()
        self.seen: list[WatchedBuild] = []
        self.result: list[bool] = []

        def run() -> None:
            self.result.append(
                keep_current(engine, self.stop, self.builds.put, **kwargs)  # type: ignore[arg-type]
            )

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def next_build(self) -> WatchedBuild:
        build = self.builds.get(timeout=WAIT)
        self.seen.append(build)
        return build

    def until(self, check: Callable[[WatchedBuild], bool]) -> WatchedBuild:
        """Builds, in order, until one passes ``check``."""
        while True:
            build = self.next_build()
            if check(build):
                return build

    def close(self) -> bool:
        self.stop.set()
        self.thread.join(WAIT)
        assert not self.thread.is_alive()
        return self.result[0]


@pytest.fixture
def watcher(settings: Settings) -> Iterator[Watcher]:
    running = Watcher(Engine(settings, FakeEmbedder()), quiet_ms=100)
    yield running
    if running.thread.is_alive():
        running.close()


def documents(settings: Settings) -> dict[str, str]:
    """path -> sha256 of every document in the published index."""
    conn = connect(settings.index / DB_NAME)
    try:
        return {path: record.sha256 for path, record in list_documents(conn).items()}
    finally:
        conn.close()


def generation(settings: Settings) -> int:
    conn = connect(settings.index / DB_NAME)
    try:
        manifest = read_manifest(conn, settings.index / DB_NAME)
        return manifest.generation if manifest else 0
    finally:
        conn.close()


def has(path: str) -> Callable[[WatchedBuild], bool]:
    """A build for an event on ``path``, or one that found it changed without an event (a file
    written just after its new folder was created may get none: the check after RESCAN_S)."""

    def check(build: WatchedBuild) -> bool:
        report = build.report
        if report is None:
            return False
        moved = [p for pair in report.renamed for p in pair]
        return path in (*build.changed, *report.added, *report.updated, *report.removed, *moved)

    return check


def test_index_follows_add_edit_rename_delete(watcher: Watcher, settings: Settings) -> None:
    first = watcher.next_build()
    assert first.report is not None and first.changed == ()
    assert first.report.added == ("north-korea-russia-alliance.txt",)
    corpus = settings.corpus

    (corpus / "notes").mkdir()
    (corpus / "notes" / "depot.txt").write_text("The depot ships grain on Tuesdays.\n")
    added = watcher.until(has("notes/depot.txt"))
    assert added.report is not None and added.report.added == ("notes/depot.txt",)
    assert watcher.engine.search("grain depot", mode="lexical")[0].path == "notes/depot.txt"

    (corpus / "notes" / "depot.txt").write_text("The depot ships rice on Fridays, not grain.\n")
    edited = watcher.until(has("notes/depot.txt"))
    assert edited.report is not None and edited.report.updated == ("notes/depot.txt",)
    document = watcher.engine.document("notes/depot.txt")
    assert document is not None and "rice on Fridays" in document.text

    os.rename(corpus / "notes" / "depot.txt", corpus / "depot-2024.txt")
    renamed = watcher.until(has("depot-2024.txt"))
    assert renamed.report is not None
    assert renamed.report.renamed == (("notes/depot.txt", "depot-2024.txt"),)
    assert renamed.report.embedded == 0  # a rename is not re-embedded

    (corpus / "depot-2024.txt").unlink()
    deleted = watcher.until(has("depot-2024.txt"))
    assert deleted.report is not None and deleted.report.removed == ("depot-2024.txt",)
    assert set(documents(settings)) == {"north-korea-russia-alliance.txt"}
    assert watcher.close() is True


def test_a_burst_of_files_is_one_or_few_builds(watcher: Watcher, settings: Settings) -> None:
    watcher.next_build()
    names = [f"burst{n}.md" for n in range(20)]
    for name in names:
        (settings.corpus / name).write_text(f"# Note {name}\n\nThe {name} note mentions copper.\n")
    while not set(names) <= set(documents(settings)):
        build = watcher.next_build()
        assert build.report is not None, build.error
    builds = [b for b in watcher.seen if b.changed]
    assert len(builds) < len(names)  # grouped, not one build per file
    assert sorted(p for b in builds for p in b.report.added) == sorted(names)  # type: ignore[union-attr]


def test_changes_during_a_build_are_built_next(settings: Settings) -> None:
    """A file written while a build runs is picked up by the build after it."""
    written = threading.Event()

    class WritingEmbedder(FakeEmbedder):
        def encode(self, texts, batch_size=32, progress=None):  # type: ignore[no-untyped-def]
            if not written.is_set():
                (settings.corpus / "late.txt").write_text("A late note about zinc.\n")
                written.set()
            return super().encode(texts, batch_size, progress)

    running = Watcher(Engine(settings, WritingEmbedder()), quiet_ms=100)
    try:
        first = running.next_build()
        assert first.report is not None and "late.txt" not in first.report.added
        running.until(has("late.txt"))
        assert "late.txt" in documents(settings)
    finally:
        running.close()


def test_index_inside_the_corpus_does_not_trigger_builds(settings: Settings) -> None:
    inside = replace(settings, index=settings.corpus / "index")
    running = Watcher(Engine(inside, FakeEmbedder()), quiet_ms=100)
    try:
        running.next_build()
        (inside.corpus / "a.txt").write_text("Cobalt is mined in the north.\n")
        running.until(has("a.txt"))
        (inside.corpus / "b.txt").write_text("Nickel is mined in the south.\n")
        running.until(has("b.txt"))
    finally:
        running.close()
    changed = {p for b in running.seen for p in b.changed}
    assert changed == {"a.txt", "b.txt"}  # the index's own writes never start a build


def test_empty_corpus_is_watched_until_it_has_documents(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path in settings.corpus.iterdir():
        path.unlink()
    monkeypatch.setattr(watch, "RETRY_S", 0.2)
    running = Watcher(Engine(settings, FakeEmbedder()), quiet_ms=100)
    try:
        first = running.next_build()
        assert first.report is None and first.error.startswith("no documents in ")
        (settings.corpus / "first.txt").write_text("The first note is about tin.\n")
        built = running.until(lambda b: b.report is not None)
        assert built.report is not None and built.report.added == ("first.txt",)
    finally:
        running.close()


def test_busy_index_is_retried(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch, "RETRY_S", 0.2)
    lock = IndexLock(settings.index)
    running = Watcher(Engine(settings, FakeEmbedder()), quiet_ms=100)
    try:
        busy = running.next_build()
        assert busy.report is None and "already building" in busy.error
        lock.release()
        built = running.until(lambda b: b.report is not None)
        assert built.report is not None and built.report.documents == 1
    finally:
        lock.release()
        running.close()


def test_stop_lands_between_commits(settings: Settings) -> None:
    """Stopped mid-build, nothing is published; the next build completes from what was staged."""
    engine = Engine(settings, FakeEmbedder())
    engine.build()
    before = documents(settings), generation(settings)
    for n in range(6):
        (settings.corpus / f"more{n}.txt").write_text(f"Note {n} mentions lithium.\n" * 40)
    stop = threading.Event()
    stages: list[str] = []

    def progress(stage: str, done: int, total: int) -> None:
        stages.append(stage)
        if stage == "read" and done == 3:
            stop.set()  # as Ctrl+C would, while files are being read

    with pytest.raises(BuildStopped, match="index is unchanged"):
        engine.build(progress=stoppable(stop, progress))
    assert (documents(settings), generation(settings)) == before
    assert "embed" not in stages
    report = engine.build()
    assert len(report.added) == 6 and generation(settings) == before[1] + 1


def test_stop_while_waiting_returns_true(watcher: Watcher) -> None:
    watcher.next_build()
    assert watcher.close() is True


def test_stop_during_a_build_returns_false(settings: Settings) -> None:
    entered, release = threading.Event(), threading.Event()

    class SlowEmbedder(FakeEmbedder):
        def encode(self, texts, batch_size=32, progress=None):  # type: ignore[no-untyped-def]
            entered.set()
            release.wait(WAIT)
            return super().encode(texts, batch_size, progress)

    running = Watcher(Engine(settings, SlowEmbedder()), quiet_ms=100)
    assert entered.wait(WAIT)
    running.stop.set()
    release.set()
    running.thread.join(WAIT)
    assert running.result == [False] and running.builds.empty()
    assert not (settings.index / DB_NAME).exists() or generation(settings) == 0


@pytest.mark.parametrize(
    ("path", "kept"),
    [
        ("notes/a.txt", True),
        ("A.PDF", True),
        ("report.docx", True),
        ("notes", True),  # a folder (or something deleted): the build decides
        ("image.png", False),
        (".git/index.md", False),
        ("notes/.draft.md", False),
        ("notes/a.txt.swp", False),
        ("notes/a.txt~", False),
        ("idx/askdoc.sqlite3", False),
        ("idx/notes.txt", False),
    ],
)
def test_corpus_filter(tmp_path: Path, path: str, kept: bool) -> None:
    (tmp_path / "image.png").write_bytes(b"png")
    keep = CorpusFilter(tmp_path, tmp_path / "idx")
    assert keep(Change.added, str(tmp_path / path)) is kept


def test_worth_telling() -> None:
    from askdoc.index.writer import BuildReport
    from askdoc.ingest.readers import Skipped

    assert WatchedBuild(None, error="busy").worth_telling
    assert not WatchedBuild(BuildReport(unchanged=3), ("a.png",)).worth_telling
    assert WatchedBuild(BuildReport(added=("a.txt",)), ("a.txt",)).worth_telling
    bad = BuildReport(skipped=(Skipped("b.pdf", "not a PDF"),))
    assert WatchedBuild(bad, ("b.pdf",)).worth_telling
    assert not WatchedBuild(bad, ("c.txt",)).worth_telling


def test_missing_corpus_ends_the_watch(settings: Settings) -> None:
    gone = replace(settings, corpus=settings.corpus.parent / "nowhere")
    engine = Engine(gone, FakeEmbedder())
    from askdoc.errors import CorpusError

    with pytest.raises(CorpusError, match="does not exist"):
        keep_current(engine, threading.Event(), lambda build: None)


def test_a_quiet_corpus_is_checked_now_and_then(
    monkeypatch: pytest.MonkeyPatch, fake_engine: Engine
) -> None:
    """A change the file system never reported is still found: after RESCAN_S without events
    a build checks the corpus (and a build that changed nothing is not worth telling)."""
    monkeypatch.setattr(watch, "RESCAN_S", 0.2)
    stop = threading.Event()

    def silent(*_args: object, **_kwargs: object) -> Iterator[frozenset[str]]:
        while not stop.is_set():
            time.sleep(0.05)
            yield frozenset()  # no event, ever

    monkeypatch.setattr(watch, "corpus_changes", silent)
    builds: list[watch.WatchedBuild] = []

    def on_build(build: watch.WatchedBuild) -> None:
        builds.append(build)
        if len(builds) == 1:  # written behind the watcher's back: no event will come
            (fake_engine.settings.corpus / "unseen.txt").write_text("The mill grinds oats daily.\n")
        if len(builds) >= 3:
            stop.set()

    assert watch.keep_current(fake_engine, stop, on_build)
    reports = [b.report for b in builds if b.report is not None]
    assert any("unseen.txt" in r.added for r in reports[1:])
    assert not builds[-1].worth_telling  # the check after that changed nothing
