"""Start-up (a fresh process paints before any heavy import) and one chat on the real model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tui_helpers import ask, ready, wait_for, widget_lines, widget_text

from askdoc.engine import Engine
from askdoc.tui.app import create_app
from askdoc.tui.screens import SourceViewer
from askdoc.tui.widgets import CitedSentence, SourceCard

PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
from dataclasses import replace
from pathlib import Path

from askdoc.config import Settings
from askdoc.engine import Engine
from askdoc.tui.app import AskdocApp

HEAVY = ("torch", "sentence_transformers", "transformers", "faiss", "sklearn")


class Probe(AskdocApp):
    def on_mount(self) -> None:  # runs before AskdocApp.on_mount: first in line after the paint
        self.call_after_refresh(self.probe)

    def probe(self) -> None:
        result = {
            "first_frame_s": time.perf_counter() - t0,
            "heavy": [name for name in HEAVY if name in sys.modules],
        }
        Path(sys.argv[3]).write_text(json.dumps(result))
        self.exit()


settings = replace(Settings(), corpus=Path(sys.argv[1]), index=Path(sys.argv[2]))
Probe(settings, Engine(settings)).run(headless=True, size=(120, 40))
"""


def test_first_frame_comes_before_any_heavy_import(tmp_path: Path) -> None:
    """A fresh `askdoc` process: the first frame is painted with torch, sentence-transformers
    and faiss not imported yet (the model loads after it, in a background thread)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Some text.\n")
    out = tmp_path / "probe.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    subprocess.run(
        [sys.executable, "-c", PROBE, str(corpus), str(tmp_path / "index"), str(out)],
        check=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    result = json.loads(out.read_text())
    assert result["heavy"] == []
    assert result["first_frame_s"] < 5  # ~0.5 s measured (docs/tui.md); generous for busy CI


ASK_PROBE = r"""
import asyncio, json, sys
from dataclasses import replace
from pathlib import Path

from askdoc.config import Settings
from askdoc.tui.app import create_app
from askdoc.tui.widgets import CitedSentence, QuestionInput

settings = replace(Settings(), corpus=Path(sys.argv[1]), index=Path(sys.argv[2]))
app = create_app(settings)


async def main() -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        while app.phase == "loading":
            await pilot.pause(0.05)
        field = app.query_one(QuestionInput)
        field.focus()
        field.value = "When was the agreement signed?"
        await pilot.press("enter")
        await pilot.pause(0.1)
        while app.busy:
            await pilot.pause(0.05)
        result = {
            "phase": app.phase,
            "cited": len(app.query(CitedSentence)),
            "modules": sorted(sys.modules),
        }
        Path(sys.argv[3]).write_text(json.dumps(result))


asyncio.run(main())
"""


@pytest.mark.model
def test_first_answer_without_torch(sample_engine: Engine, tmp_path: Path) -> None:
    """A fresh `askdoc` process answers its first question through the model's ONNX export
    (made by the session's index build): torch is never imported."""
    out = tmp_path / "probe.json"
    settings = sample_engine.settings
    subprocess.run(
        [sys.executable, "-c", ASK_PROBE, str(settings.corpus), str(settings.index), str(out)],
        check=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        cwd=tmp_path,
    )
    result = json.loads(out.read_text())
    assert result["phase"] == "ready"
    assert result["cited"] >= 1
    modules = {m.split(".")[0] for m in result["modules"]}
    assert "onnxruntime" in modules
    assert not modules & {"torch", "sentence_transformers", "transformers"}


@pytest.mark.model
@pytest.mark.anyio
async def test_chat_with_the_real_model(sample_engine: Engine) -> None:
    app = create_app(sample_engine.settings, sample_engine, show_timings=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot, app)
        assert app.phase == "ready"
        await ask(pilot, app, "When was the agreement signed?")
        sentences = [widget_text(s) for s in app.query(CitedSentence)]
        assert any("June 19" in s for s in sentences)
        card = app.query(SourceCard).first()
        assert "north-korea-russia-alliance.txt:L" in widget_lines(card)[0]
        await pilot.press("ctrl+o", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SourceViewer))
        assert "June 19" in widget_text(app.screen.query_one("#cited"))
        await pilot.press("escape")
        await ask(pilot, app, "and who signed it?")
        last = list(app.query("AnswerView"))[-1]
        assert "read as: When was the agreement signed? and who signed it?" in widget_text(last)
