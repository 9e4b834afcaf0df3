"""Fixtures for the chat UI tests: a small fixed corpus and fake-embedder engines."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from tui_helpers import EmbedderFactory, write_corpus

from askdoc.config import Settings
from askdoc.embedder import Embedder
from askdoc.engine import Engine
from askdoc.tui.app import AskdocApp, create_app


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def make_embedder(fake_embedder: Embedder) -> EmbedderFactory:
    """FakeEmbedder's class (from tests/conftest.py), to make fakes with other names."""
    return type(fake_embedder)


@pytest.fixture
def tui_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings on relative folders (``corpus``, ``index``) inside tmp_path, the current folder:
    what the screen shows does not depend on where the test runs."""
    monkeypatch.chdir(tmp_path)
    write_corpus(tmp_path / "corpus")
    return replace(Settings(), corpus=Path("corpus"), index=Path("index"))


@pytest.fixture
def built_engine(tui_settings: Settings, make_embedder: EmbedderFactory) -> Iterator[Engine]:
    """An engine with a fake embedder over an index of DOCS (built, not loaded)."""
    engine = Engine(tui_settings, make_embedder())
    engine.build()
    yield engine
    engine.close()


@pytest.fixture
def app(built_engine: Engine) -> AskdocApp:
    return create_app(built_engine.settings, built_engine, show_timings=False)
