"""Documents, file names and questions are untrusted: nothing in them may become markup, an action,
a link or a terminal escape. Index hostile files, ask, click everything, and look."""

from __future__ import annotations

import glob
from dataclasses import replace
from pathlib import Path

import pytest
from textual.widgets import Static
from tui_helpers import EmbedderFactory, ask, painted_actions, ready, wait_for, widget_lines

from askdoc.config import Settings
from askdoc.engine import Engine
from askdoc.text import clean_text
from askdoc.tui.app import create_app
from askdoc.tui.screens import SourceViewer
from askdoc.tui.widgets import AnswerView, Selectable, SourceCard

pytestmark = pytest.mark.anyio

HOSTILE = {
    "zebra": "[@click=app.quit]X",
    "walrus": "[ @click=app.screenshot('x.svg','/tmp')]X",
    "heron": "[/",
    "otter": "[link=file:///etc/passwd]x[/link]",
    "badger": "[$var]",
    "falcon": "[b]bold?[/b]",
    "lynx": "\x1b[31mred\x1b[0m",
    "moose": "\x1b]8;;http://evil\x07link\x1b]8;;\x07",
    "bison": "\u202eevil",
}
HOSTILE_NAME = "[@click=app.quit]gecko.txt"
QUESTION = "What is the secret password [@click=app.quit]Q?"


def svg_files(tmp_path: Path) -> set[str]:
    return set(glob.glob("/tmp/*.svg")) | {str(p) for p in tmp_path.rglob("*.svg")}


@pytest.fixture
def hostile_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.chdir(tmp_path)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    words = list(HOSTILE)
    for name, group in (
        ("markup.txt", words[:3]),
        ("links.md", words[3:6]),
        ("tty.txt", words[6:]),
    ):
        lines = [f"The {word} secret password is {HOSTILE[word]} here." for word in group]
        (corpus / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    (corpus / HOSTILE_NAME).write_text("The gecko secret password is plain.\n", encoding="utf-8")
    return replace(Settings(), corpus=Path("corpus"), index=Path("index"), top_k=10)


async def test_hostile_corpus_is_shown_verbatim_and_never_acted_on(
    hostile_settings: Settings, make_embedder: EmbedderFactory, tmp_path: Path
) -> None:
    engine = Engine(hostile_settings, make_embedder())
    report = engine.build()
    assert report.documents == 4
    before = svg_files(tmp_path)
    app = create_app(hostile_settings, engine, show_timings=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot, app)
        await ask(pilot, app, QUESTION)
        view = app.query_one(AnswerView)
        assert view.answer is not None and len(view.answer.sources) == 4

        # the detector works: markup in a Static *does* paint an action
        probe = Static("[@click=app.bell]probe")
        await app.screen.mount(probe)
        await pilot.pause()
        assert painted_actions(probe)
        await probe.remove()

        for card in app.query(SourceCard):  # show every passage whole
            card.expanded = True
        await pilot.pause()
        painted = "\n".join(widget_lines(app.screen))
        assert QUESTION in painted
        assert f"corpus/{HOSTILE_NAME}:L1" in painted
        for payload in HOSTILE.values():
            assert clean_text(payload) in painted
        assert "\x1b" not in painted and "\x07" not in painted and "\u202e" not in painted
        assert painted_actions(app.screen) == []

        # click every citation and source on its hostile text: the viewer opens, nothing else
        for n, item in enumerate(list(app.query(Selectable))):
            app.transcript.scroll_to_widget(item, animate=False, top=True, immediate=True)
            await pilot.pause()
            part = item.query(Static).last()
            lines = widget_lines(part)
            row = next((i for i, line in enumerate(lines) if "[" in line), 0)
            column = max(0, lines[row].find("[")) if lines else 0
            await pilot.click(part, offset=(column + 1, row))
            await wait_for(pilot, lambda: isinstance(app.screen, SourceViewer))
            viewer = app.screen
            text = "\n".join(widget_lines(viewer))
            assert clean_text(item.source.text).split("\n")[0] in text
            assert painted_actions(viewer) == []
            assert "\x1b" not in text and "\u202e" not in text
            if n == 0:  # and on the document text inside the viewer
                await pilot.click("#cited", offset=(column + 3, 0))
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, SourceViewer))
        # and the question, the answer header and the titles
        app.transcript.scroll_home(animate=False, immediate=True)
        await pilot.pause()
        for widget in [*app.query(".question"), *app.query(".answer-header")]:
            await pilot.click(widget, offset=(10, 0))
        assert app.is_running and app.return_code is None
    assert svg_files(tmp_path) == before
    engine.close()
