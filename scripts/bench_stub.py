"""A stand-in embedder for the benchmarks that measure everything but the model (memory of a
100k-passage build, resuming a killed build): it reports the *real* model's fingerprint and
tokenizer, so the indexes it writes load in the real engine, but its vectors are pseudo-random
(seeded by the text) and it never imports torch."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

import numpy as np

from askdoc.embedder import Embedder, ProgressFn


class StubEmbedder(Embedder):
    """Real fingerprint and token counts; random unit vectors; optional delay per passage."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__("")
        self.delay = delay
        self.encoded = 0
        self._stub_loaded = False

    @property
    def loaded(self) -> bool:
        return self._stub_loaded

    def load(self) -> None:
        self._stub_loaded = True

    def set_threads(self, threads: int) -> None:
        pass

    def encode(
        self, texts: Sequence[str], batch_size: int = 32, progress: ProgressFn | None = None
    ) -> np.ndarray:
        self._stub_loaded = True
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for begin in range(0, len(texts), batch_size):
            part = texts[begin : begin + batch_size]
            for row, text in enumerate(part, begin):
                seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest())
                vector = np.random.default_rng(seed).standard_normal(self.dimension)
                out[row] = vector / np.linalg.norm(vector)
            if self.delay:
                time.sleep(self.delay * len(part))
            self.encoded += len(part)
            if progress is not None:
                progress(len(part))
        return out

    def encode_passages(
        self,
        texts: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]],
        batch_size: int = 32,
        progress: ProgressFn | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Passage vectors as ``encode``; each sentence gets its passage's vector plus noise."""
        vectors = self.encode(texts, batch_size, progress)
        return vectors, [
            jitter(vector, len(own)) for vector, own in zip(vectors, spans, strict=True)
        ]


def jitter(vector: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """``count`` unit vectors near ``vector`` (stand-ins for its sentences' pooled vectors)."""
    rng = np.random.default_rng(seed + int(abs(float(vector[0])) * 1e9))
    noise = rng.standard_normal((count, vector.shape[0])).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    out = vector[None, :] + noise
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)
