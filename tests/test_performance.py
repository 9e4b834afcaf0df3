"""Performance code paths: build_faiss (exact below the threshold, IVF-SQ8 above it; ids are chunk
ids; nprobe survives the round trip through the checksummed file) and length-sorted batching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from askdoc.embedder import Embedder
from askdoc.errors import IndexCorruptError
from askdoc.index.vectors import (
    build_faiss,
    faiss_ids,
    ivf_layout,
    load_faiss_file,
    write_faiss_file,
)

DIM = 384


def unit_vectors(count: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def rows(vectors: np.ndarray, first_id: int = 1000) -> list[tuple[int, bytes]]:
    return [(first_id + 3 * i, v.tobytes()) for i, v in enumerate(vectors)]


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_ids_are_chunk_ids_and_each_vector_finds_itself(kind: str) -> None:
    vectors = unit_vectors(3000)
    index = build_faiss(iter(rows(vectors)), DIM, kind)
    assert index.ntotal == 3000
    assert list(faiss_ids(index)) == [1000 + 3 * i for i in range(3000)]
    _, found = index.search(vectors[:200], 1)
    assert list(found[:, 0]) == [1000 + 3 * i for i in range(200)]


def test_nprobe_is_saved_in_the_file(tmp_path: Path) -> None:
    import faiss

    index = build_faiss(iter(rows(unit_vectors(5000))), DIM, "ivf")
    nlist, nprobe, _ = ivf_layout(5000)
    digest = write_faiss_file(index, tmp_path, "vectors-00000001.faiss")
    loaded = load_faiss_file(tmp_path / "vectors-00000001.faiss", digest)
    ivf = faiss.extract_index_ivf(loaded)
    assert (ivf.nlist, ivf.nprobe) == (nlist, nprobe)
    assert isinstance(loaded, faiss.IndexIDMap2)


def test_empty_and_damaged_rows() -> None:
    assert build_faiss(iter([]), DIM, "ivf").ntotal == 0
    with pytest.raises(IndexCorruptError, match="not 1536"):
        build_faiss(iter([(1, b"\0" * 12)]), DIM, "ivf")


@pytest.mark.parametrize(
    ("count", "nlist", "nprobe"),
    [(1, 1, 1), (900, 32, 32), (10_000, 128, 32), (100_000, 256, 32), (1_000_000, 1024, 64)],
)
def test_ivf_layout(count: int, nlist: int, nprobe: int) -> None:
    got_nlist, got_nprobe, train = ivf_layout(count)
    assert (got_nlist, got_nprobe) == (nlist, nprobe)
    assert got_nlist <= train <= count


def test_length_batches_group_similar_lengths() -> None:
    embedder = Embedder()  # tokenizer only: no torch
    same = ["word " * 150] * 40
    assert sorted(len(b) for b in embedder.length_batches(same, 32)) == [8, 32]
    sentences = [("tok " * n).strip() for n in (3, 60, 5, 41, 8, 12, 30, 2, 59, 20, 7, 45)]
    batches = embedder.length_batches(sentences, 64)
    assert sorted(i for b in batches for i in b) == list(range(len(sentences)))
    lengths = embedder.count_tokens(sentences)
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(flat, reverse=True)
    assert 1 < len(batches) < len(sentences)  # split where padding costs more than a pass
    assert embedder.length_batches([], 32) == []
    assert sorted(len(b) for b in embedder.length_batches(["a b c"] * 5, 2)) == [1, 2, 2]


@pytest.mark.model
def test_batching_does_not_change_vectors(real_embedder: Embedder) -> None:
    texts = ["A short one.", "Penguins breed in the Antarctic winter. " * 5, "x", "Why? " * 30]
    one_by_one = np.vstack([real_embedder.encode([t]) for t in texts])
    assert np.allclose(real_embedder.encode(texts, batch_size=64), one_by_one, atol=1e-5)


@pytest.mark.parametrize(
    ("lengths", "size", "expected"),
    [
        ([], 8, []),
        ([5], 8, [[0]]),
        ([3, 200, 4, 190], 8, [[1, 3], [2, 0]]),  # long with long, short with short
        ([10, 10, 10], 2, [[0], [1, 2]]),  # ties keep input order; one cost-equal split
    ],
)
def test_split_by_length(lengths: list[int], size: int, expected: list[list[int]]) -> None:
    from askdoc.batching import split_by_length

    assert split_by_length(lengths, size) == expected
