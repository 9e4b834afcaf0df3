"""Sentence vectors made at index time from each passage's own forward pass ("late pooling"):
which spans, how word-pieces are pooled into them, and how they are packed for storage.

The model turns a passage into one vector per word-piece and averages them into the passage's
vector. Averaging only the word-pieces of one sentence gives that sentence a vector *in the
context of its passage* at no extra model cost, so the answer step scores every candidate sentence
without running the model at question time. Measured with ``askdoc eval`` (docs/evaluation.md):
these vectors also choose better sentences than embedding each sentence on its own.

Stored per passage text (keyed like the passage vector) as one blob: the sentence spans relative
to the passage text, and the vectors as int8 with one float32 scale each (~390 bytes a sentence;
cosine error below 0.002).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

from askdoc.ingest import split_sentences
from askdoc.text import MIN_ANSWER_WORDS, words

Span = tuple[int, int]
_HEADER = struct.Struct("<II")  # sentence count, dimension


def body_spans(text: str, body: int) -> list[Span]:
    """Sentence spans of the passage body ``text[body:]`` (after the heading line the model sees
    as context), in ``text`` coordinates: the answer step's candidates, split the same way.
    Sentences too short to be an answer (``MIN_ANSWER_WORDS``) are left out: 30% of the
    sentences of the pydoc evaluation corpus, mostly code lines."""
    return [
        (a, b) for a, b in split_sentences(text, body) if len(words(text[a:b])) >= MIN_ANSWER_WORDS
    ]


def pool(
    tokens: np.ndarray, offsets: Sequence[tuple[int, int]], spans: Sequence[Span]
) -> np.ndarray:
    """Normalized mean of the word-piece vectors inside each span: (len(spans), dimension).

    ``tokens`` are the model's word-piece vectors of one text, special tokens included (their
    offsets are (0, 0)). A span with no word-piece of its own (none fully inside) takes the ones
    that overlap it; one with none at all takes the whole text's mean."""
    dim = tokens.shape[1]
    out = np.zeros((len(spans), dim), dtype=np.float32)
    if not len(spans):
        return out
    starts = np.fromiter((o[0] for o in offsets), dtype=np.int64, count=len(offsets))
    ends = np.fromiter((o[1] for o in offsets), dtype=np.int64, count=len(offsets))
    real = ends > starts
    for i, (a, b) in enumerate(spans):
        inside = real & (starts >= a) & (ends <= b)
        if not inside.any():
            inside = real & (starts < b) & (ends > a)
        vector = tokens[inside].mean(axis=0) if inside.any() else tokens.mean(axis=0)
        norm = float(np.linalg.norm(vector))
        out[i] = vector / norm if norm > 0 else vector
    return out


def pack(spans: Sequence[Span], vectors: np.ndarray) -> bytes:
    """One passage's sentence spans and vectors as a blob (int8 with a scale per vector)."""
    count = len(spans)
    if not count:
        return _HEADER.pack(0, 0)
    data = np.asarray(vectors, dtype=np.float32).reshape(count, -1)
    dim = data.shape[1]
    scales = np.abs(data).max(axis=1) / 127.0
    scales = np.where(scales > 0, scales, 1.0).astype("<f4")
    quantized = np.clip(np.rint(data / scales[:, None]), -127, 127).astype(np.int8)
    return b"".join(
        (
            _HEADER.pack(count, dim),
            np.asarray(spans, dtype="<u4").reshape(count, 2).tobytes(),
            scales.tobytes(),
            quantized.tobytes(),
        )
    )


def unpack(blob: bytes, dimension: int) -> tuple[list[Span], np.ndarray]:
    """(spans, normalized float32 vectors) from ``pack``; ValueError when the blob is malformed."""
    if len(blob) < _HEADER.size:
        raise ValueError("sentence vectors: blob too short")
    count, dim = _HEADER.unpack_from(blob)
    if count and dim != dimension:
        raise ValueError(f"sentence vectors: dimension {dim}, not {dimension}")
    if len(blob) != _HEADER.size + count * (8 + 4 + dim):
        raise ValueError("sentence vectors: wrong blob size")
    pos = _HEADER.size
    spans = np.frombuffer(blob, dtype="<u4", count=count * 2, offset=pos).reshape(count, 2)
    pos += count * 8
    scales = np.frombuffer(blob, dtype="<f4", count=count, offset=pos)
    pos += count * 4
    quantized = np.frombuffer(blob, dtype=np.int8, count=count * dim, offset=pos)
    vectors = quantized.reshape(count, dim).astype(np.float32) * scales[:, None]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    return [(int(a), int(b)) for a, b in spans], vectors
