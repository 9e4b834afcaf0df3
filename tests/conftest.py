"""Shared fixtures: a deterministic fake embedder, settings on temp folders, the real model."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from askdoc.config import Settings
from askdoc.embedder import Embedder, ModelFingerprint, ProgressFn
from askdoc.engine import Engine
from askdoc.tokens import TokenCounter

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SAMPLE_CORPUS = REPO / "corpus"


class FakeEmbedder(Embedder):
    """Bag-of-words hashing embedder: deterministic, instant, and similar texts get similar
    vectors. Needs no model files: tokens are counted by a rule (``tokens.RULES``), never by
    the model's tokenizer. Counts every text it encodes."""

    def __init__(self, dimension: int = 384, name: str = "fake-bow") -> None:
        self._setup(Path(name), "onnx", "", TokenCounter(rule="word-pieces"))
        self._dim = dimension
        self._name = name
        self.encoded: list[str] = []
        self._loaded = False

    @property
    def dimension(self) -> int:
        return self._dim

    @property
    def max_seq_length(self) -> int:
        return 256

    @property
    def fingerprint(self) -> ModelFingerprint:  # type: ignore[override]
        return ModelFingerprint(self._name, self._dim, 256, True, "0" * 64)

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        self._loaded = True

    def set_threads(self, threads: int) -> None:
        pass

    def encode(
        self, texts: Sequence[str], batch_size: int = 32, progress: ProgressFn | None = None
    ) -> np.ndarray:
        self._loaded = True
        self.encoded.extend(texts)
        out = self._bag_of_words(texts)
        if progress is not None:
            progress(len(texts))
        return out

    def encode_passages(
        self,
        texts: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]],
        batch_size: int = 32,
        progress: ProgressFn | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Passage vectors as ``encode``; each span's vector is its own bag of words (not
        counted in ``encoded``: the real model pools them from the same forward pass)."""
        vectors = self.encode(texts, batch_size, progress)
        pooled = [
            self._bag_of_words([text[a:b] for a, b in own])
            for text, own in zip(texts, spans, strict=True)
        ]
        return vectors, pooled

    def _bag_of_words(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                word = word.strip(".,;:!?\"'()[]")
                if word:
                    bucket = int(hashlib.md5(word.encode()).hexdigest()[:8], 16) % self._dim
                    out[row, bucket] += 1.0
            norm = np.linalg.norm(out[row])
            out[row] = out[row] / norm if norm else out[row]
        return out


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """A copy of the sample corpus in a temp folder."""
    target = tmp_path / "corpus"
    shutil.copytree(SAMPLE_CORPUS, target)
    return target


@pytest.fixture
def settings(tmp_path: Path, corpus_dir: Path) -> Settings:
    return replace(Settings(), corpus=corpus_dir, index=tmp_path / "index")


@pytest.fixture
def fake_engine(settings: Settings, fake_embedder: FakeEmbedder) -> Iterator[Engine]:
    engine = Engine(settings, fake_embedder)
    yield engine
    engine.close()


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The ONNX export of the model goes to a temporary folder (ASKDOC_MODEL_CACHE, inherited
    by subprocesses), made at most once per test session, never in ~/.cache."""
    folder = tmp_path_factory.mktemp("model-cache")
    before = os.environ.get("ASKDOC_MODEL_CACHE")
    os.environ["ASKDOC_MODEL_CACHE"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("ASKDOC_MODEL_CACHE", None)
    else:
        os.environ["ASKDOC_MODEL_CACHE"] = before


@pytest.fixture(scope="session")
def real_embedder(model_cache: Path) -> Embedder:
    """The real packaged model through its ONNX export (made here), loaded once per session."""
    embedder = Embedder(cache=model_cache)
    embedder.load()
    embedder.set_threads(1)
    return embedder


@pytest.fixture(scope="session")
def sample_engine(tmp_path_factory: pytest.TempPathFactory, real_embedder: Embedder) -> Engine:
    """An engine over an index of the sample corpus built with the real model (once)."""
    root = tmp_path_factory.mktemp("sample")
    corpus = root / "corpus"
    shutil.copytree(SAMPLE_CORPUS, corpus)
    engine = Engine(replace(Settings(), corpus=corpus, index=root / "index"), real_embedder)
    engine.build()
    engine.load()
    return engine


@pytest.fixture(scope="session")
def llm_url() -> Iterator[str]:
    """A real language model: llama.cpp's OpenAI-compatible server (xllamacpp, in this process)
    with SmolLM2-135M-Instruct on a free local port, one thread; its base URL (…/v1)."""
    from scripts.llm_server import start

    server = start(threads=1)
    yield server.url
    server.close()
