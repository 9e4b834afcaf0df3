"""Helpers shared by the chat UI tests: the corpus, engines that block or fail, waiting, and
reading what a widget paints."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget

from askdoc.config import Settings
from askdoc.embedder import Embedder
from askdoc.engine import Engine
from askdoc.errors import ModelError
from askdoc.tui.app import AskdocApp
from askdoc.tui.widgets import QuestionInput

DOCS = {
    "treaty.txt": (
        "The Treaty of Oakridge\n"
        "The Treaty of Oakridge was signed on 4 March 1921 in the town of Velden.\n"
        "It ended the long river dispute between the two valleys.\n"
        "Both valleys agreed to share the water of the Serle river.\n"
    ),
    "lighthouse.md": (
        "# The lighthouse\n\n"
        "The lighthouse keeper was Mara Quill.\n"
        "She lit the lamp every night for forty years.\n"
        "The lamp burned whale oil until 1902.\n"
    ),
    "bakery.txt": (
        "The bakery opens at six in the morning.\n"
        "Its rye bread needs flour, water, salt and a sourdough starter.\n"
        "The baker, Tomas Brandt, learned the trade in Hamburg.\n"
    ),
}

EmbedderFactory = Callable[..., Embedder]


def write_corpus(root: Path, docs: dict[str, str] = DOCS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


class GatedEngine(Engine):
    """An engine whose load() waits for the test to open ``gate``."""

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        super().__init__(settings, embedder)
        self.gate = threading.Event()

    def load(self) -> None:
        if not self.gate.wait(timeout=30):
            raise ModelError("the test never opened the gate")
        super().load()


class BrokenModelEngine(Engine):
    """An engine whose model cannot be loaded."""

    def load(self) -> None:
        raise ModelError("cannot load the embedding model from /nowhere: weights missing")


async def wait_for(pilot: Pilot[Any], check: Callable[[], bool], timeout: float = 10) -> None:
    """Let the app run until ``check()`` holds (or fail after ``timeout`` seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {check}")
        await pilot.pause(0.02)
    await pilot.pause()


async def ready(pilot: Pilot[Any], app: AskdocApp) -> None:
    await wait_for(pilot, lambda: app.phase != "loading")


async def ask(pilot: Pilot[Any], app: AskdocApp, question: str) -> None:
    """Type a question (as a paste: fast), press enter, wait until every question is answered."""
    field = app.query_one(QuestionInput)
    field.focus()
    field.value = question
    await pilot.press("enter")
    await wait_for(pilot, lambda: not app.busy)


def widget_lines(widget: Widget) -> list[str]:
    """The text a widget (or its children) paints, line by line, also out of view."""
    if widget.children:
        return [line for child in widget.children for line in widget_lines(child)]
    width, height = widget.size + widget.styles.gutter.totals
    return [
        "".join(segment.text for segment in strip).rstrip()
        for strip in widget.render_lines(Region(0, 0, width, height))
    ]


def widget_text(widget: Widget) -> str:
    return "\n".join(widget_lines(widget))


def painted_actions(widget: Widget) -> list[object]:
    """Every ``@click`` (or other action) and link in the segments a widget paints."""
    if widget.children:
        return [found for child in widget.children for found in painted_actions(child)]
    width, height = widget.size + widget.styles.gutter.totals
    found: list[object] = []
    for strip in widget.render_lines(Region(0, 0, width, height)):
        for segment in strip:
            style = segment.style
            if style is None:
                continue
            found += [v for k, v in (style.meta or {}).items() if k.startswith("@")]
            if style.link:
                found.append(style.link)
    return found
