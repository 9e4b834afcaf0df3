"""The chat's watch toggle (f5, the palette, ``askdoc --watch``): files added, edited, renamed
and deleted while the app runs reach the index and are noted in one line each."""

from __future__ import annotations

import os
import threading

import pytest
from textual.pilot import Pilot
from tui_helpers import EmbedderFactory, ask, ready, wait_for, widget_text

from askdoc.config import Settings
from askdoc.engine import Engine
from askdoc.index.lock import IndexLock
from askdoc.index.writer import BuildReport
from askdoc.ingest.readers import Skipped
from askdoc.tui.app import AskdocApp, create_app
from askdoc.tui.commands import COMMANDS
from askdoc.tui.screens import KEYS
from askdoc.tui.watching import watch_summary
from askdoc.tui.widgets import AnswerView, Note, StatusBar

pytestmark = pytest.mark.anyio

SIZE = (120, 40)
WAIT = 60.0


def notes(app: AskdocApp) -> list[str]:
    return [widget_text(note) for note in app.query(Note) if note.has_class("muted")]


def state(app: AskdocApp) -> str:
    return widget_text(app.query_one(StatusBar).query_one("#state"))


async def note_appears(pilot: Pilot[int], app: AskdocApp, text: str) -> None:
    await wait_for(pilot, lambda: any(text in note for note in notes(app)), timeout=WAIT)


def watcher_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "askdoc-watch"]


async def test_f5_follows_add_edit_rename_delete(app: AskdocApp, tui_settings: Settings) -> None:
    corpus = tui_settings.corpus
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("f5")
        await wait_for(pilot, lambda: "watching" in state(app))
        assert app.watching

        (corpus / "mill.txt").write_text("The mill grinds barley for the bakery every Monday.\n")
        await note_appears(pilot, app, "index updated: added mill.txt · 4 documents")
        await ask(pilot, app, "When does the mill grind barley?")
        answer = app.query(AnswerView).last().answer
        assert answer is not None and answer.sources[0].path == "mill.txt"

        (corpus / "mill.txt").write_text("The mill grinds rye for the bakery every Thursday.\n")
        await note_appears(pilot, app, "index updated: updated mill.txt · 4 documents")
        document = app.engine.document("mill.txt")
        assert document is not None and "Thursday" in document.text

        os.rename(corpus / "mill.txt", corpus / "old-mill.txt")
        await note_appears(pilot, app, "renamed mill.txt → old-mill.txt · 4 documents")

        (corpus / "old-mill.txt").unlink()
        await note_appears(pilot, app, "index updated: removed old-mill.txt · 3 documents")
        assert app.engine.document("old-mill.txt") is None

        await pilot.press("f5")
        await wait_for(pilot, lambda: "watching" not in state(app))
        assert not app.watching
        await wait_for(pilot, lambda: not watcher_threads(), timeout=WAIT)


async def test_nothing_is_noted_when_nothing_changed(
    app: AskdocApp, tui_settings: Settings
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        builds: list[BuildReport] = []
        real = app.engine.build

        def counted(*args: object, **kwargs: object) -> BuildReport:
            report = real(*args, **kwargs)  # type: ignore[arg-type]
            builds.append(report)
            return report

        app.engine.build = counted  # type: ignore[method-assign]
        await pilot.press("f5")
        await wait_for(pilot, lambda: len(builds) == 1, timeout=WAIT)  # the catch-up build
        await wait_for(pilot, lambda: not app.building)
        (tui_settings.corpus / "picture.png").write_bytes(b"not a document")
        (tui_settings.corpus / "extra.md").write_text("# Extra\n\nThe extra note is on salt.\n")
        await note_appears(pilot, app, "added extra.md")
        assert notes(app) == ["index updated: added extra.md · 4 documents"]
        assert not builds[0].changed  # the catch-up found nothing: no note for it


async def test_palette_and_help_offer_the_toggle() -> None:
    assert any(action == "toggle_watch" for _, _, action in COMMANDS)
    assert any(key == "f5" and "watch" in what for _, key, what in KEYS)


async def test_watch_at_start_builds_a_missing_index(
    tui_settings: Settings, make_embedder: EmbedderFactory
) -> None:
    engine = Engine(tui_settings, make_embedder())
    app = create_app(tui_settings, engine, show_timings=False, watch=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.phase == "ready", timeout=WAIT)
        assert app.watching and "watching" in state(app)
        await ask(pilot, app, "Who kept the lighthouse?")
        answer = app.query(AnswerView).last().answer
        assert answer is not None and answer.found
    engine.close()


@pytest.mark.slow
async def test_busy_index_is_noted_once_then_retried(
    app: AskdocApp, tui_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("askdoc.tui.watching.RETRY_S", 0.3)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        lock = IndexLock(tui_settings.index)
        try:
            await pilot.press("f5")
            (tui_settings.corpus / "late.txt").write_text("A late note about tin.\n")

            def errors() -> list[str]:
                return [widget_text(n) for n in app.query(Note) if n.has_class("error")]

            await wait_for(pilot, lambda: bool(errors()), timeout=WAIT)
            for _ in range(3):  # retries go on quietly
                await wait_for(pilot, lambda: app.building, timeout=WAIT)
                await wait_for(pilot, lambda: not app.building, timeout=WAIT)
            assert len(errors()) == 1 and "already building" in errors()[0]
        finally:
            lock.release()
        await note_appears(pilot, app, "added late.txt")


def test_watch_summary() -> None:
    report = BuildReport(
        added=("a.txt", "b.txt", "c.txt", "d.txt"),
        removed=("old.md",),
        renamed=(("x.txt", "y.txt"),),
        skipped=(Skipped("bad.pdf", "not a PDF"),),
        documents=12,
    )
    assert watch_summary(report) == (
        "index updated: added a.txt, b.txt, c.txt and 1 more · removed old.md · "
        "renamed x.txt → y.txt · skipped bad.pdf · 12 documents"
    )
