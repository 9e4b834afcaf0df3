"""Snapshots of every screen (pytest-textual-snapshot). Update: pytest tests/tui --snapshot-update.

Deterministic by construction: fake embedder, fixed corpus on relative paths, no timings, no
cursor blink, a fixed terminal size, and every screenshot taken once the app has settled."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input
from tui_helpers import EmbedderFactory, wait_for, widget_text

from askdoc.config import Settings
from askdoc.engine import Engine
from askdoc.tui.app import AskdocApp, create_app
from askdoc.tui.screens import HelpScreen, SourceViewer
from askdoc.tui.widgets import StatusBar

SIZE = (120, 40)
Snap = Callable[..., bool]


async def settle(pilot: Pilot[Any]) -> None:
    """Model loaded (or failed), status bar filled in, cursor steady."""
    app = pilot.app
    assert isinstance(app, AskdocApp)
    app.query_one(Input).cursor_blink = False
    await wait_for(pilot, lambda: app.phase != "loading")
    await wait_for(pilot, lambda: "reading index" not in widget_text(app.query_one(StatusBar)))


async def ask(pilot: Pilot[Any], question: str) -> None:
    app = pilot.app
    assert isinstance(app, AskdocApp)
    await settle(pilot)
    app.query_one(Input).value = question
    await pilot.press("enter")
    await wait_for(pilot, lambda: not app.busy)
    await pilot.pause(0.1)


def test_empty_chat(snap_compare: Snap, app: AskdocApp) -> None:
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


@pytest.mark.parametrize("size", [(80, 24), SIZE, (160, 45)], ids=["80x24", "120x40", "160x45"])
def test_answered_question(snap_compare: Snap, app: AskdocApp, size: tuple[int, int]) -> None:
    """The answer first, each sentence with [n] and its file:line; sources collapsed."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await ask(pilot, "When was the Treaty of Oakridge signed?")

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (160, 45)], ids=["80x24", "160x45"])
def test_refusal(snap_compare: Snap, app: AskdocApp, size: tuple[int, int]) -> None:
    """A refusal says so and lists the closest passages one line each."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await ask(pilot, "How many moons does Jupiter have?")

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_expanded_source(snap_compare: Snap, app: AskdocApp) -> None:
    """Space on a source shows its whole passage."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await ask(pilot, "When was the Treaty of Oakridge signed?")
        await pilot.press("ctrl+o", "down", "space")
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_follow_up_reads_as_one_line(snap_compare: Snap, app: AskdocApp) -> None:
    """A follow-up shows the question it was read as, on one short line at 80 columns."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await ask(pilot, "When was the Treaty of Oakridge signed?")
        await ask(pilot, "and where was it signed?")

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_source_viewer(snap_compare: Snap, app: AskdocApp) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await ask(pilot, "Who was the lighthouse keeper?")
        await pilot.press("ctrl+o", "enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, SourceViewer))
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_help_screen(snap_compare: Snap, app: AskdocApp) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_no_index(
    snap_compare: Snap, tui_settings: Settings, make_embedder: EmbedderFactory
) -> None:
    engine = Engine(tui_settings, make_embedder())
    app = create_app(tui_settings, engine, show_timings=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)
    engine.close()
