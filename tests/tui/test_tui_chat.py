"""Pilot tests of the chat: asking, citations, source viewer, history, palette, export, queue."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest
from textual.command import CommandList, CommandPalette
from textual.content import Content
from textual.pilot import Pilot
from textual.widgets import Input
from tui_helpers import (
    EmbedderFactory,
    GatedEngine,
    ask,
    ready,
    wait_for,
    widget_lines,
    widget_text,
)

from askdoc.config import Settings
from askdoc.embedder import Embedder
from askdoc.engine import Engine
from askdoc.tui.app import AskdocApp, create_app
from askdoc.tui.screens import HelpScreen, SourceViewer
from askdoc.tui.widgets import (
    AnswerView,
    CitedSentence,
    QuestionInput,
    SourceCard,
    StatusBar,
)
from askdoc.types import Answer

pytestmark = pytest.mark.anyio

SIZE = (120, 40)
TREATY = "When was the Treaty of Oakridge signed?"


async def test_answer_shows_cited_sentences_and_sources(app: AskdocApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        assert app.phase == "ready"
        await ask(pilot, app, TREATY)
        view = app.query_one(AnswerView)
        assert view.answer is not None and view.answer.found
        sentences = [widget_text(s) for s in app.query(CitedSentence)]
        assert any("signed on 4 March 1921" in s for s in sentences)
        # each sentence: its [n], then the file and the sentence's own line
        assert all(re.search(r"\[1\] corpus/treaty\.txt:L\d+$", s) for s in sentences)
        card = app.query(SourceCard).first()
        title, *excerpt = widget_lines(card)
        assert "[1] corpus/treaty.txt:L" in title and "score" in title
        assert len(excerpt) <= 3  # collapsed: the supporting sentence in a little context
        content = card.query_one(".passage").render()
        assert isinstance(content, Content)
        lit = [content.plain[s.start : s.end] for s in content.spans if "reverse" in str(s.style)]
        assert any("signed on 4 March 1921" in part for part in lit)
        assert "Sources" in widget_text(view)
        # space shows the whole passage (and the passage's lines in the title); again hides it
        card.focus()
        await pilot.press("space")
        await pilot.pause()
        assert card.expanded
        passage = card.source.text
        assert " ".join(passage.split()) in " ".join(" ".join(widget_lines(card)).split())
        await pilot.press("space")
        await pilot.pause()
        assert not card.expanded and len(widget_lines(card)) <= 4


async def test_source_viewer_by_keyboard(app: AskdocApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await ask(pilot, app, TREATY)
        await pilot.press("ctrl+o")
        assert isinstance(app.focused, CitedSentence)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SourceViewer))
        cited = "\n".join(widget_lines(app.screen.query_one("#cited")))
        assert "2 The Treaty of Oakridge was signed on 4 March 1921" in cited
        title = widget_text(app.screen.query_one("#viewer-title"))
        assert "corpus/treaty.txt:L" in title
        await pilot.press("c", "down", "escape")
        assert not isinstance(app.screen, SourceViewer)
        assert isinstance(app.focused, CitedSentence)
        # j/k walk the citations and sources; 1 opens source [1] of that answer
        await pilot.press(*["j"] * len(app.query(CitedSentence)))
        assert isinstance(app.focused, SourceCard)
        await pilot.press(*["k"] * (len(app.query(CitedSentence)) - 1))
        await pilot.press("k")
        assert isinstance(app.focused, CitedSentence)
        await pilot.press("1")
        await wait_for(pilot, lambda: isinstance(app.screen, SourceViewer))
        await pilot.press("q")
        # a letter typed on a citation goes to the question line
        await pilot.press("w")
        assert isinstance(app.focused, QuestionInput) and app.focused.value == "w"


@pytest.mark.parametrize("leave", [("ctrl+o",), ("ctrl+o", "enter", "q")])
async def test_typing_goes_on_after_clearing_the_chat(app: AskdocApp, leave: tuple[str]) -> None:
    """ctrl+o (and maybe the source viewer, closed with q), then ctrl+l: the citation that had
    the focus is gone, and what is typed next must still reach the question line."""
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await ask(pilot, app, TREATY)
        await pilot.press(*leave)
        await wait_for(pilot, lambda: not isinstance(app.screen, SourceViewer))
        await pilot.press("ctrl+l")
        await pilot.pause()
        await pilot.press(*"next")
        field = app.query_one(QuestionInput)
        assert app.focused is field and field.value == "next"


async def test_footer_fits_80_columns(app: AskdocApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot, app)
        footer = widget_text(app.screen.query_one("Footer"))
        for key in ("Quit", "Help", "Citations", "Rebuild", "Export", "Clear", "palette"):
            assert key in footer, footer


async def test_export_goes_to_the_user_data_folder_by_default(
    app: AskdocApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    app.export_path = None
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await ask(pilot, app, TREATY)
        await pilot.press("ctrl+s")
        await pilot.pause()
        files = list((tmp_path / "data" / "askdoc" / "transcripts").glob("askdoc-*.md"))
        assert len(files) == 1 and not list(tmp_path.glob("*.md"))
        assert any(str(files[0]) in n.message for n in app._notifications)


async def test_source_viewer_by_mouse(app: AskdocApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await ask(pilot, app, TREATY)
        for widget in [app.query_one(CitedSentence), app.query(SourceCard).first()]:
            assert await pilot.click(widget)
            await wait_for(pilot, lambda: isinstance(app.screen, SourceViewer))
            await pilot.click("#cited")
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, SourceViewer))


async def test_history_up_and_down(app: AskdocApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await ask(pilot, app, "Who was the lighthouse keeper?")
        await ask(pilot, app, TREATY)
        field = app.query_one(QuestionInput)
        await pilot.press(*"dra")
        await pilot.press("up")
        assert field.value == TREATY
        await pilot.press("up")
        assert field.value == "Who was the lighthouse keeper?"
        await pilot.press("up")
        assert field.value == "Who was the lighthouse keeper?"
        await pilot.press("down")
        assert field.value == TREATY
        await pilot.press("down")
        assert field.value == "dra"


async def test_question_mark_types_in_the_input_and_f1_opens_help(app: AskdocApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press(*"why?")
        assert app.query_one(QuestionInput).value == "why?"
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        assert "ctrl+r" in widget_text(app.screen.query_one("#help-keys"))
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        app.query_one(QuestionInput).value = ""
        await ask(pilot, app, TREATY)
        await pilot.press("ctrl+o", "question_mark")  # off the input, ? is help
        assert isinstance(app.screen, HelpScreen)


async def palette(pilot: Pilot[int], app: AskdocApp, command: str) -> None:
    """ctrl+p, type the command (pasted: fast), enter."""
    await pilot.press("ctrl+p")
    await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
    app.screen.query_one(Input).value = command
    await wait_for(pilot, lambda: app.screen.query_one(CommandList).option_count > 0)
    await pilot.press("enter")
    await wait_for(pilot, lambda: not isinstance(app.screen, CommandPalette))


async def test_palette_toggles_scores_clears_and_opens_help(app: AskdocApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await ask(pilot, app, TREATY)
        card = app.query(SourceCard).first()
        assert "score" in widget_lines(card)[0]
        await palette(pilot, app, "toggle scores")
        assert "score" not in widget_lines(card)[0]
        await palette(pilot, app, "toggle scores")
        assert "score" in widget_lines(card)[0]
        await palette(pilot, app, "clear chat")
        assert not app.query(AnswerView) and app.entries == []
        await palette(pilot, app, "help")
        assert isinstance(app.screen, HelpScreen)


async def test_export_writes_markdown_with_path_line_refs(app: AskdocApp, tmp_path: Path) -> None:
    out = tmp_path / "exports"
    out.mkdir()
    app.export_path = out
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await ask(pilot, app, TREATY)
        await ask(pilot, app, "Who was the lighthouse keeper?")
        await pilot.press("ctrl+s")
        await pilot.pause()
        files = list(out.glob("askdoc-transcript-*.md"))
        assert len(files) == 1
        text = files[0].read_text(encoding="utf-8")
        assert f"## Q: {TREATY}" in text
        assert "(corpus/treaty.txt:L2)" in text
        assert "corpus/lighthouse.md:L" in text
        assert any(str(files[0]) in n.message for n in app._notifications)
        await palette(pilot, app, "export transcript")
        assert len(list(out.glob("askdoc-transcript-*.md"))) >= 1


async def test_question_asked_while_the_model_loads_waits(
    tui_settings: Settings, built_engine: Engine, make_embedder: EmbedderFactory
) -> None:
    engine = GatedEngine(tui_settings, make_embedder())
    app = create_app(tui_settings, engine, show_timings=False)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.1)
            assert app.phase == "loading"
            assert "loading model" in widget_text(app.query_one(StatusBar))
            field = app.query_one(QuestionInput)
            for question in (TREATY, "Who was the lighthouse keeper?"):
                field.value = question
                await pilot.press("enter")
            await pilot.press(*"still typing")
            assert field.value == "still typing"  # input never blocks
            views = list(app.query(AnswerView))
            assert len(views) == 2 and all(v.answer is None for v in views)
            assert all("waiting for the model" in widget_text(v) for v in views)
            engine.gate.set()
            await wait_for(pilot, lambda: not app.busy)
            answers = [v.answer for v in views]
            assert [a.question for a in answers if a] == [TREATY, "Who was the lighthouse keeper?"]
    finally:
        engine.gate.set()
        engine.close()


class SlowEngine(Engine):
    """Holds every question until ``gate`` opens; records their order and overlap."""

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        super().__init__(settings, embedder)
        self.gate = threading.Event()
        self.calls: list[str] = []
        self.running = 0
        self.most = 0

    def ask(
        self,
        question: str,
        k: int | None = None,
        mode: str | None = None,
        previous: str | None = None,
    ) -> Answer:
        self.calls.append(question)
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            self.gate.wait(timeout=10)
            time.sleep(0.02)
            return super().ask(question, k, mode, previous)
        finally:
            self.running -= 1


async def test_questions_are_answered_one_at_a_time_in_order(
    tui_settings: Settings, built_engine: Engine, make_embedder: EmbedderFactory
) -> None:
    engine = SlowEngine(tui_settings, make_embedder())
    app = create_app(tui_settings, engine, show_timings=False)
    questions = [TREATY, "Who was the lighthouse keeper?", "When does the bakery open?"]
    try:
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot, app)
            field = app.query_one(QuestionInput)
            for question in questions:
                field.value = question
                await pilot.press("enter")
            assert "answering… · 2 waiting" in widget_text(app.query_one(StatusBar))
            views = list(app.query(AnswerView))
            assert "searching" in widget_text(views[0])
            assert "queued: 1 ahead" in widget_text(views[1])
            assert "queued: 2 ahead" in widget_text(views[2])
            engine.gate.set()
            await wait_for(pilot, lambda: not app.busy)
            assert engine.calls == questions and engine.most == 1
            assert [v.answer.question for v in views if v.answer] == questions
    finally:
        engine.gate.set()
        engine.close()


async def test_follow_up_shows_what_was_searched(app: AskdocApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await ask(pilot, app, TREATY)
        await ask(pilot, app, "and where was it signed?")
        last = list(app.query(AnswerView))[-1]
        assert last.answer is not None and last.answer.searched != last.answer.question
        assert f"read as: {TREATY} and where was it signed?" in widget_text(last)


async def test_clearing_the_chat_and_not_found_reset_follow_ups(app: AskdocApp) -> None:
    follow = "and where was it signed?"
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await ask(pilot, app, TREATY)
        await pilot.press("ctrl+l")
        await ask(pilot, app, follow)
        last = list(app.query(AnswerView))[-1]
        assert last.answer is not None and last.answer.searched == follow
        await ask(pilot, app, TREATY)
        await ask(pilot, app, "How many moons does Jupiter have?")
        assert not list(app.query(AnswerView))[-1].answer.found  # type: ignore[union-attr]
        await ask(pilot, app, follow)
        last = list(app.query(AnswerView))[-1]
        assert last.answer is not None and last.answer.searched == follow


async def test_a_chain_of_follow_ups_leans_on_its_first_question(app: AskdocApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await ask(pilot, app, TREATY)
        await ask(pilot, app, "and where was it signed?")
        await ask(pilot, app, "and who signed it?")
        last = list(app.query(AnswerView))[-1]
        assert last.answer is not None
        assert last.answer.searched == f"{TREATY} and who signed it?"


async def test_not_found_answers_look_different(app: AskdocApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await ask(pilot, app, "How many moons does Jupiter have?")
        view = app.query_one(AnswerView)
        assert view.answer is not None and not view.answer.found
        assert view.has_class("not-found")
        text = widget_text(view)
        assert "Not found in the documents" in text
        assert "Closest passages (none of them answers it)" in text
        assert not app.query(CitedSentence)


async def test_a_question_with_nothing_to_search_gets_a_message(app: AskdocApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await ask(pilot, app, "the of and")
        view = app.query_one(AnswerView)
        assert view.has_class("failed") and "nothing in it to search for" in widget_text(view)
        await ask(pilot, app, TREATY)  # the chat goes on
        assert list(app.query(AnswerView))[-1].answer is not None


async def test_status_bar_shows_the_index_and_corpus_drift(app: AskdocApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        bar = app.query_one(StatusBar)
        await wait_for(pilot, lambda: "documents" in widget_text(bar))
        text = widget_text(bar)
        assert "3 documents" in text and "fake-bow" in text and "ready" in text
        assert "changed" not in text
        Path("corpus/new.txt").write_text("A new file about comets.\n", encoding="utf-8")
        app.action_refresh_status()
        await wait_for(pilot, lambda: "corpus changed" in widget_text(bar))
        assert "1 added" in widget_text(bar)


async def test_status_bar_counts_skipped_files_without_a_drift_warning(
    tui_settings: Settings, make_embedder: EmbedderFactory
) -> None:
    Path("corpus/scan.txt").write_bytes(b"\x00\x01" * 200)  # skipped while reading
    engine = Engine(tui_settings, make_embedder())
    assert [s.path for s in engine.build().skipped] == ["scan.txt"]
    app = create_app(tui_settings, engine, show_timings=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        bar = app.query_one(StatusBar)
        await wait_for(pilot, lambda: "documents" in widget_text(bar))
        text = widget_text(bar)
        assert "1 skipped" in text and "corpus changed" not in text
        assert not bar.query_one("#index-info").has_class("drift")
    engine.close()


async def test_answers_keep_coming_while_the_index_rebuilds(
    tui_settings: Settings, built_engine: Engine, make_embedder: EmbedderFactory
) -> None:
    gate = threading.Event()

    class SlowBuild(Engine):
        def build(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
            gate.wait(timeout=10)
            return super().build(*args, **kwargs)  # type: ignore[arg-type]

    engine = SlowBuild(tui_settings, make_embedder())
    app = create_app(tui_settings, engine, show_timings=False)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot, app)
            await pilot.press("ctrl+r")
            assert app.building and app.query_one("#build-row").display
            await ask(pilot, app, TREATY)
            assert app.query_one(AnswerView).answer is not None
            assert app.building
            gate.set()
            await wait_for(pilot, lambda: not app.building)
            assert not app.query_one("#build-row").display
            assert app.query(".report")
    finally:
        gate.set()
        engine.close()


async def test_view_follows_new_answers_unless_scrolled_up(
    tui_settings: Settings, built_engine: Engine, make_embedder: EmbedderFactory
) -> None:
    engine = SlowEngine(tui_settings, make_embedder())
    engine.gate.set()
    app = create_app(tui_settings, engine, show_timings=False)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot, app)
            transcript = app.transcript
            for question in (TREATY, "Who was the lighthouse keeper?"):
                await ask(pilot, app, question)
                await pilot.pause(0.1)
                newest = list(app.query(AnswerView))[-1]
                # the new answer is shown from its question down
                top = newest.virtual_region.y - transcript.scroll_y
                assert 0 <= top < transcript.scrollable_content_region.height
            assert transcript.scroll_y > 0
            # the person scrolls up to read while the next answer is on its way: stay put
            engine.gate.clear()
            app.query_one(QuestionInput).value = "When does the bakery open?"
            await pilot.press("enter")
            transcript.scroll_home(animate=False, immediate=True)
            await pilot.pause()
            engine.gate.set()
            await wait_for(pilot, lambda: not app.busy)
            await pilot.pause(0.1)
            assert transcript.scroll_y == 0
    finally:
        engine.gate.set()
        engine.close()
