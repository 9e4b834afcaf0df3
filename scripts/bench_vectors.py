"""Real embeddings for the benchmarks, and larger sets resampled from them.

``real_pool`` embeds generated passages with the real model once and caches the vectors outside
the repo (see ``bench_corpus.cache_dir``), keyed by the model's weights and the exact texts.
``resample`` grows a pool to any size the way the brief allows: each new vector is a random convex
combination of a real vector and one of its 16 nearest real neighbours, plus a little Gaussian
noise, renormalized. Neighbour pairs keep the new vectors on the model's "manifold" (a pair of
unrelated vectors would average into a vector no passage has).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import numpy as np
from bench_corpus import cache_dir, generate_passages

POOL_SIZE = 3000
NEIGHBOURS = 16
NOISE = 0.35
"""Norm of the added noise relative to the vector's (before renormalizing)."""


def real_pool(embedder: Any, size: int = POOL_SIZE, seed: int = 7) -> tuple[list[str], np.ndarray]:
    """``size`` generated passages and their real-model vectors (cached after the first run)."""
    texts = generate_passages(size, seed=seed)
    key = hashlib.sha256(
        (embedder.fingerprint.weights_sha256 + "\x00" + "\x00".join(texts)).encode()
    ).hexdigest()[:20]
    path = cache_dir() / f"pool-{size}-{key}.npy"
    if path.is_file():
        vectors = np.load(path, allow_pickle=False)
        if vectors.shape == (size, embedder.dimension):
            return texts, vectors
    started = time.perf_counter()
    vectors = embedder.encode(texts, batch_size=32)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors, allow_pickle=False)
    tmp.replace(path)
    print(
        f"# embedded the {size}-passage vector pool in {time.perf_counter() - started:.0f} s "
        f"(cached in {path})",
        flush=True,
    )
    return texts, vectors


def neighbours(pool: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
    """Indices of each pool vector's ``k`` nearest other pool vectors (exact, by cosine)."""
    sims = pool @ pool.T
    np.fill_diagonal(sims, -np.inf)
    return np.argpartition(-sims, k, axis=1)[:, :k]


def resample(
    pool: np.ndarray, count: int, seed: int = 0, noise: float = NOISE, batch: int = 65536
) -> np.ndarray:
    """``count`` normalized float32 vectors resampled from ``pool`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    near = neighbours(pool)
    dim = pool.shape[1]
    out = np.empty((count, dim), dtype=np.float32)
    for begin in range(0, count, batch):
        n = min(batch, count - begin)
        a = rng.integers(0, len(pool), n)
        b = near[a, rng.integers(0, near.shape[1], n)]
        lam = rng.uniform(0.0, 1.0, (n, 1)).astype(np.float32)
        mixed = lam * pool[a] + (1.0 - lam) * pool[b]
        mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
        mixed += rng.standard_normal((n, dim), dtype=np.float32) * (noise / np.sqrt(dim))
        mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
        out[begin : begin + n] = mixed
    return out
