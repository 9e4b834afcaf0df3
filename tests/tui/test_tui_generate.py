"""Generated answers in the chat (ctrl+g): streamed from a real language model (SmolLM2-135M on
llama.cpp's server), checked sentence by sentence, stoppable with ctrl+b, and quoted answers
when the model is missing or down."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace

import pytest
from textual.pilot import Pilot
from tui_helpers import EmbedderFactory, ask, ready, wait_for, widget_text

from askdoc.config import Settings
from askdoc.engine import Engine
from askdoc.tui.app import AskdocApp, create_app
from askdoc.tui.commands import COMMANDS
from askdoc.tui.generation import GeneratedView
from askdoc.tui.widgets import AnswerView, QuestionInput, StatusBar

pytestmark = pytest.mark.anyio

SIZE = (120, 40)
TREATY = "When was the Treaty of Oakridge signed?"


@pytest.fixture
def engine_with(tui_settings: Settings, make_embedder: EmbedderFactory) -> Iterator[list[Engine]]:
    made: list[Engine] = []
    yield made
    for engine in made:
        engine.close()


def make_app(
    settings: Settings, embedder_factory: EmbedderFactory, url: str, made: list[Engine]
) -> AskdocApp:
    settings = replace(settings, llm_url=url)
    engine = Engine(settings, embedder_factory())
    engine.build()
    made.append(engine)
    return create_app(settings, engine, show_timings=False)


def test_the_palette_and_help_offer_generation() -> None:
    actions = {action for _, _, action in COMMANDS}
    assert {"toggle_generate", "stop_generating"} <= actions


async def test_ctrl_g_without_a_model_says_how_to_set_one(app: AskdocApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert app.generate is False
        assert any("No language model is configured" in str(n.message) for n in app._notifications)


@pytest.mark.slow
async def test_a_generated_answer_streams_then_shows_its_verdicts(
    tui_settings: Settings,
    make_embedder: EmbedderFactory,
    llm_url: str,
    engine_with: list[Engine],
) -> None:
    app = make_app(tui_settings, make_embedder, llm_url, engine_with)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("ctrl+g")
        assert app.generate is True
        assert "✎ generate" in widget_text(app.query_one(StatusBar))
        await ask_and_wait(pilot, app, TREATY)
        view = app.query_one(GeneratedView)
        generated = view.generated
        assert generated is not None and generated.ok and generated.text
        assert view.text.strip() == generated.text  # every streamed piece arrived, in order
        painted = widget_text(view)
        assert "Generated answer" in painted and "SmolLM2-135M-Instruct" in painted
        checked = list(view.query(".checked"))
        assert len(checked) == len(generated.checks)
        for widget, check in zip(checked, generated.checks, strict=True):
            assert widget.has_class("supported") == check.ok
            assert widget.has_class("unsupported") == (not check.ok)
            if check.ok and check.claim and check.support is not None:
                assert "↳" in widget_text(widget)
        answer_view = app.query_one(AnswerView)
        assert answer_view.answer is not None  # the quoted answer is there too
        await pilot.press("ctrl+g")
        assert app.generate is False


async def ask_and_wait(pilot: Pilot[object], app: AskdocApp, question: str) -> None:
    await ask(pilot, app, question)
    await wait_for(pilot, lambda: not app.busy, timeout=120)


@pytest.mark.slow
async def test_ctrl_x_stops_the_model(
    tui_settings: Settings,
    make_embedder: EmbedderFactory,
    llm_url: str,
    engine_with: list[Engine],
) -> None:
    settings = replace(tui_settings, llm_max_tokens=400)
    app = make_app(settings, make_embedder, llm_url, engine_with)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("ctrl+g")
        field = app.query_one(QuestionInput)
        field.focus()
        field.value = "Write a long story about the lighthouse keeper and the bakery."
        await pilot.press("enter")
        await wait_for(pilot, lambda: bool(app.query(GeneratedView)), timeout=60)
        assert "generating" in widget_text(app.query_one(StatusBar))
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: not app.busy, timeout=60)
        generated = app.query_one(GeneratedView).generated
        assert generated is not None and generated.cancelled
        assert "generation stopped" in generated.notes()
        assert generated.tokens < 400


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_dead_model_is_one_line_and_the_answer_is_quoted(
    tui_settings: Settings, make_embedder: EmbedderFactory, engine_with: list[Engine]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    app = make_app(tui_settings, make_embedder, dead, engine_with)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("ctrl+g")
        await ask_and_wait(pilot, app, TREATY)
        view = app.query_one(GeneratedView)
        assert view.has_class("failed")
        painted = " ".join(widget_text(view).split())
        assert f"cannot reach the language model at {dead}: connection refused" in painted
        assert "answered from the documents" in painted
        answer = app.query_one(AnswerView).answer
        assert answer is not None and answer.found
