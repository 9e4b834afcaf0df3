"""The chat UI on the Milvus store (a real Milvus Lite): the same answer, citations and source
viewer as on the embedded store."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from tui_helpers import EmbedderFactory, ask, ready, wait_for, widget_lines, widget_text

from askdoc.config import Settings
from askdoc.engine import Engine
from askdoc.tui.app import create_app
from askdoc.tui.screens import SourceViewer
from askdoc.tui.widgets import CitedSentence, SourceCard

pytest.importorskip("pymilvus")
pytestmark = pytest.mark.anyio

TREATY = "When was the Treaty of Oakridge signed?"


async def shown(settings: Settings, make_embedder: EmbedderFactory) -> tuple[list[str], str]:
    """Ask TREATY in the chat UI; the cited sentences and sources painted, and the source
    viewer's cited lines."""
    engine = Engine(settings, make_embedder())
    engine.build()
    app = create_app(settings, engine, show_timings=False)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot, app)
            await ask(pilot, app, TREATY)
            header = widget_text(app.query_one("#index-info"))
            painted = [widget_text(s) for s in app.query(CitedSentence)]
            painted += [widget_lines(card)[0].split(" score")[0] for card in app.query(SourceCard)]
            await pilot.press("ctrl+o", "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, SourceViewer))
            cited = "\n".join(widget_lines(app.screen.query_one("#cited")))
            await pilot.press("q")
    finally:
        engine.close()
    assert ("· Milvus ·" in header) == bool(settings.store), header
    return painted, cited


async def test_the_chat_on_milvus_shows_what_the_embedded_store_shows(
    tui_settings: Settings, make_embedder: EmbedderFactory, tmp_path: Path
) -> None:
    milvus = replace(tui_settings, store=f"milvus-lite:{tmp_path / 'chat.db'}")
    on_milvus, cited = await shown(milvus, make_embedder)
    assert any("signed on 4 March 1921" in line for line in on_milvus)
    assert "The Treaty of Oakridge was signed on 4 March 1921" in cited
    embedded, embedded_cited = await shown(tui_settings, make_embedder)
    assert on_milvus == embedded and cited == embedded_cited
