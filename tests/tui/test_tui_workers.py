"""The app's long jobs are Textual thread workers: quitting cancels a build, which stops at its
next safe point (between commits) and publishes nothing."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from textual.worker import WorkerState
from tui_helpers import EmbedderFactory, ready, wait_for

from askdoc.config import Settings
from askdoc.engine import Engine
from askdoc.errors import BuildStopped
from askdoc.tui.app import create_app

pytestmark = pytest.mark.anyio


class RecordingEngine(Engine):
    """Remembers how its builds ended."""

    def __init__(self, settings: Settings, embedder: Any) -> None:
        super().__init__(settings, embedder)
        self.ended: list[BaseException | None] = []
        self.done = threading.Event()

    def build(self, *args: Any, **kwargs: Any) -> Any:
        try:
            report = super().build(*args, **kwargs)
        except BaseException as exc:
            self.ended.append(exc)
            raise
        finally:
            self.done.set()
        self.ended.append(None)
        return report


async def test_quitting_stops_a_build_at_its_next_safe_point(
    tui_settings: Settings, make_embedder: EmbedderFactory
) -> None:
    embedder = make_embedder()
    entered, release = threading.Event(), threading.Event()
    encode = embedder.encode_passages

    def held(texts: Sequence[str], *args: Any, **kwargs: Any) -> tuple[np.ndarray, Any]:
        entered.set()
        release.wait(10)  # the embedding slice under way when the app quits
        return encode(texts, *args, **kwargs)

    embedder.encode_passages = held  # type: ignore[method-assign]
    engine = RecordingEngine(tui_settings, embedder)
    app = create_app(tui_settings, engine, show_timings=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot, app)
        app.action_rebuild()
        await wait_for(pilot, entered.is_set)
        (worker,) = [w for w in app.workers if w.group == "build"]
        assert worker.state == WorkerState.RUNNING
        app.exit()
    assert worker.is_cancelled
    release.set()
    assert engine.done.wait(10)
    assert isinstance(engine.ended[0], BuildStopped)
    assert engine.status().manifest is None  # nothing was published
    engine.close()
