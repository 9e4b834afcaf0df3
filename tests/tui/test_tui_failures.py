"""Failure is part of the UI: no index, empty or missing corpus, another model's index, a model
that does not load. Each is a message in the app (and a way out), never a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tui_helpers import BrokenModelEngine, EmbedderFactory, ask, ready, wait_for, widget_text

from askdoc.config import Settings
from askdoc.engine import Engine
from askdoc.tui.app import AskdocApp, create_app
from askdoc.tui.messages import BuildProgress
from askdoc.tui.widgets import AnswerView, IndexPanel, Note, SourceCard, StatusBar

pytestmark = pytest.mark.anyio

SIZE = (120, 40)


def new_app(
    settings: Settings, make_embedder: EmbedderFactory, name: str = "fake-bow"
) -> AskdocApp:
    return create_app(settings, Engine(settings, make_embedder(name=name)), show_timings=False)


async def build_from_panel(pilot: object, app: AskdocApp) -> None:
    """Press the panel's build button and wait for the build to end."""
    await pilot.click("#build-index")  # type: ignore[attr-defined]
    await wait_for(pilot, lambda: not app.building)  # type: ignore[arg-type]


def notes(app: AskdocApp, variant: str) -> str:
    return "\n".join(widget_text(n) for n in app.query(Note) if n.has_class(variant))


async def test_no_index_offers_to_build_and_building_works(
    tui_settings: Settings, make_embedder: EmbedderFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    stages: list[tuple[str, int, int]] = []
    shown = AskdocApp.on_build_progress

    def record(self: AskdocApp, message: BuildProgress) -> None:
        stages.append((message.stage, message.done, message.total))
        shown(self, message)

    monkeypatch.setattr(AskdocApp, "on_build_progress", record)
    app = new_app(tui_settings, make_embedder)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        assert app.phase == "no-index"
        panel = app.query_one(IndexPanel)
        assert "There is no index yet for corpus" in widget_text(panel)
        assert "no index" in widget_text(app.query_one(StatusBar))
        # a question asked now waits for the index instead of being lost
        app.query_one("#question").value = "Who was the lighthouse keeper?"  # type: ignore[attr-defined]
        await pilot.press("enter")
        assert "build it with ctrl+r" in widget_text(app.query_one(AnswerView))
        await build_from_panel(pilot, app)
        assert "added 3" in widget_text(app.query_one(".report"))
        # the model is loaded by the build (no index: the app never loaded it): the user is told
        assert stages[:2] == [("model", 0, 1), ("model", 1, 1)]
        assert [s for s, _d, _t in stages[2:]] == sorted(
            (s for s, _d, _t in stages[2:]), key=["read", "embed"].index
        )
        await wait_for(pilot, lambda: app.phase == "ready" and not app.busy)
        assert not app.query(IndexPanel)
        answer = app.query_one(AnswerView).answer
        assert answer is not None and answer.found
        assert "Mara Quill" in answer.sentences[0].text
        await wait_for(pilot, lambda: "3 documents" in widget_text(app.query_one(StatusBar)))


async def test_empty_corpus_is_reported_in_the_app(
    tui_settings: Settings, make_embedder: EmbedderFactory
) -> None:
    shutil.rmtree("corpus")
    Path("corpus").mkdir()
    app = new_app(tui_settings, make_embedder)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        assert app.phase == "no-index"
        await build_from_panel(pilot, app)
        assert "The index was not built: no documents in corpus" in notes(app, "error")
        assert app.phase == "no-index" and app.query(IndexPanel)
        # fix the corpus, build again from the keyboard: it works
        Path("corpus/a.txt").write_text("The comet Velora returns every 77 years.\n")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.phase == "ready")
        await ask(pilot, app, "How often does the comet Velora return?")
        assert app.query_one(AnswerView).answer is not None


async def test_missing_corpus_is_reported_in_the_app(
    tui_settings: Settings, make_embedder: EmbedderFactory
) -> None:
    shutil.rmtree("corpus")
    app = new_app(tui_settings, make_embedder)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await build_from_panel(pilot, app)
        assert "corpus folder corpus does not exist" in notes(app, "error")
        assert app.is_running


async def test_index_from_another_model_offers_a_rebuild(
    tui_settings: Settings, make_embedder: EmbedderFactory
) -> None:
    other = Engine(tui_settings, make_embedder(name="other"))
    other.build()
    other.close()
    app = new_app(tui_settings, make_embedder)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        assert app.phase == "mismatch"
        text = widget_text(app.query_one(IndexPanel))
        assert "built with another embedding model, other" in text
        assert "index needs a rebuild" in widget_text(app.query_one(StatusBar))
        await build_from_panel(pilot, app)
        assert "full rebuild" in widget_text(app.query_one(".report"))
        await wait_for(pilot, lambda: app.phase == "ready")
        await ask(pilot, app, "When does the bakery open?")
        assert app.query(SourceCard)


async def test_model_that_fails_to_load_is_a_message(
    tui_settings: Settings, built_engine: Engine, make_embedder: EmbedderFactory
) -> None:
    engine = BrokenModelEngine(tui_settings, make_embedder())
    app = create_app(tui_settings, engine, show_timings=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        assert app.phase == "model-error"
        assert "The embedding model could not be loaded: cannot load" in notes(app, "error")
        assert "model failed to load" in widget_text(app.query_one(StatusBar))
        await ask(pilot, app, "Who was the lighthouse keeper?")
        view = app.query_one(AnswerView)
        assert view.has_class("failed") and "could not be loaded" in widget_text(view)
        assert app.is_running
    engine.close()


async def test_rebuild_from_the_ui_picks_up_a_new_file(app: AskdocApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        Path("corpus/comet.txt").write_text(
            "The comet Velora returns every 77 years.\nIts tail is blue.\n", encoding="utf-8"
        )
        app.action_refresh_status()
        await wait_for(pilot, lambda: "1 added" in widget_text(app.query_one(StatusBar)))
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: not app.building)
        report = widget_text(app.query_one(".report"))
        assert "added 1" in report and "4 documents" in report
        await wait_for(pilot, lambda: "changed" not in widget_text(app.query_one(StatusBar)))
        await ask(pilot, app, "How often does the comet Velora return?")
        answer = app.query_one(AnswerView).answer
        assert answer is not None and answer.sources[0].path == "comet.txt"
