"""Hybrid retrieval: dense and lexical (BM25) candidates from a store, fused and de-duplicated."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from askdoc.index.store import Store
from askdoc.types import Hit, StoredChunk

CANDIDATES = 50
DIVERSITY = 0.9
"""Each earlier pick from the same document multiplies a passage's score by this."""
MERGED_MAX_CHARS = 4000
"""Overlapping passages merge into one source only while it stays this short."""


@dataclass(frozen=True)
class FusionParams:
    """How the dense and lexical candidate lists become one ranking, and how the lexical side is
    computed.

    ``method`` "score" (the default): ``cosine + lexical_alpha * bm25 / bound``, where ``bound``
    is the highest BM25 score any passage could reach for the question (``(k1 + 1) * sum of the
    idf of its terms``), so the lexical part is an idf-weighted share of the question's words
    found in the passage, between 0 and 1. A passage found only by the lexical side gets the
    lowest cosine of the dense candidates. "rrf": weighted reciprocal rank fusion,
    ``sum(weight / (k + rank))``. Chosen on the tuning half of eval/atlas (docs/evaluation.md):
    rank fusion lets a weak lexical list pull good dense results down on questions in users'
    words; a small score weight keeps dense order unless the question's rare words decide."""

    method: str = "score"
    lexical_alpha: float = 0.4
    """Weight of the normalised BM25 score in score fusion."""
    k: float = 60.0
    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    common_fraction: float = 0.05
    """Question terms found in more than this share of the passages are "common" for
    ``lexical_search`` (the two rarest never are; 1.0: none is). It changes speed, never results.
    Lexical search at 100k passages (scripts/bench.py's index, 40 questions), p50 / p95 in ms:
    2%: 11.4 / 43, **5%: 11.3 / 43**, 10%: 14.2 / 36, 20%: 17.2 / 40; every term: 23.7 / 68 (2%
    falls back to the full query more often: 5 of 36 questions vs 3). Simply dropping the common
    terms was faster (7-8 ms) but lowered pydoc hybrid MRR@10 from 0.824 to 0.726 (5%) and 0.807
    (20%): docs/evaluation.md."""


def fuse(
    dense: list[int], lexical: list[int], params: FusionParams = FusionParams()
) -> list[tuple[int, float]]:
    """Fuse two ranked id lists (best first) into one ranking; ties keep dense order first."""
    scores: dict[int, float] = {}
    for rank, cid in enumerate(dense, 1):
        scores[cid] = scores.get(cid, 0.0) + params.dense_weight / (params.k + rank)
    for rank, cid in enumerate(lexical, 1):
        scores[cid] = scores.get(cid, 0.0) + params.lexical_weight / (params.k + rank)
    order = {cid: i for i, cid in enumerate(dict.fromkeys(dense + lexical))}
    return sorted(scores.items(), key=lambda item: (-item[1], order[item[0]]))


def fuse_scores(
    dense: list[tuple[int, float]],
    lexical: list[tuple[int, float]],
    bound: float,
    alpha: float,
) -> list[tuple[int, float]]:
    """Fuse (id, cosine) and (id, BM25) lists by score: ``cosine + alpha * bm25 / bound``. A
    passage missing from the dense list gets its lowest cosine; ties keep dense order first."""
    cosine = dict(dense)
    floor = min(cosine.values()) if cosine else 0.0
    lexical_part = {cid: score / bound for cid, score in lexical} if bound > 0 else {}
    order = {cid: i for i, cid in enumerate(dict.fromkeys([c for c, _ in dense + lexical]))}
    scores = {cid: cosine.get(cid, floor) + alpha * lexical_part.get(cid, 0.0) for cid in order}
    return sorted(scores.items(), key=lambda item: (-item[1], order[item[0]]))


def overlaps(a: StoredChunk, b: StoredChunk) -> bool:
    """Overlapping spans of one document (e.g. neighbouring chunks sharing a sentence)."""
    same_doc = a.doc_id == b.doc_id
    return same_doc and a.chunk.start < b.chunk.end and b.chunk.start < a.chunk.end


def merge(a: StoredChunk, b: StoredChunk) -> StoredChunk:
    """One passage covering both overlapping passages of a document (exact union span)."""
    first, second = (a, b) if a.chunk.start <= b.chunk.start else (b, a)
    x, y = first.chunk, second.chunk
    if y.end <= x.end:
        return first
    text = x.text[: y.start - x.start] + y.text
    chunk = replace(x, text=text, end=y.end, line_end=max(x.line_end, y.line_end))
    return replace(first, chunk=chunk)


def diversify(
    ranked: list[tuple[int, float]], doc_of: dict[int, int], factor: float = DIVERSITY
) -> list[tuple[int, float]]:
    """Greedy re-ranking that prefers a new document when scores are close: a passage's score is
    multiplied by ``factor`` for every passage already picked from its document."""
    pending = [(cid, score) for cid, score in ranked if cid in doc_of]
    picked: list[tuple[int, float]] = []
    per_doc: dict[int, int] = {}
    while pending:
        best = max(
            range(len(pending)),
            key=lambda i: (pending[i][1] * factor ** per_doc.get(doc_of[pending[i][0]], 0), -i),
        )
        cid, score = pending.pop(best)
        per_doc[doc_of[cid]] = per_doc.get(doc_of[cid], 0) + 1
        picked.append((cid, score))
    return picked


def search(
    reader: Store,
    query_vector: np.ndarray | None,
    query_text: str,
    k: int,
    mode: str = "hybrid",
    params: FusionParams = FusionParams(),
    timings: dict[str, float] | None = None,
) -> list[Hit]:
    """The ``k`` best distinct passages for a query, within one consistent index snapshot."""
    timings = timings if timings is not None else {}
    with reader.snapshot() as manifest:
        t0 = time.perf_counter()
        dense: list[tuple[int, float]] = []
        if mode in ("dense", "hybrid") and query_vector is not None:
            dense = reader.dense(query_vector, CANDIDATES)
        t1 = time.perf_counter()
        lexical: list[tuple[int, float]] = []
        if mode in ("lexical", "hybrid"):
            lexical = reader.lexical_top(
                query_text, manifest.chunks, CANDIDATES, params.common_fraction
            )
        t2 = time.perf_counter()
        if params.method == "score" and dense and lexical:
            bound = reader.lexical_bound(query_text, manifest.chunks)
            fused = fuse_scores(dense, lexical, bound, params.lexical_alpha)
        else:
            fused = fuse([c for c, _ in dense], [c for c, _ in lexical], params)
        dense_rank = {cid: i for i, (cid, _) in enumerate(dense, 1)}
        dense_score = dict(dense)
        lexical_rank = {cid: i for i, (cid, _) in enumerate(lexical, 1)}
        chunks = reader.chunks(cid for cid, _ in fused[: max(k * 4, 20)])
        t3 = time.perf_counter()
    timings.update(dense=t1 - t0, lexical=t2 - t1, fusion=t3 - t2)
    hits: list[Hit] = []
    kept: list[StoredChunk] = []
    texts: set[str] = set()
    for cid, score in diversify(fused, {cid: c.doc_id for cid, c in chunks.items()}):
        stored = chunks.get(cid)
        if stored is None or stored.chunk.text in texts:
            continue  # identical text in another file: one source is enough
        texts.add(stored.chunk.text)
        twin = next((i for i, other in enumerate(kept) if overlaps(stored, other)), None)
        if twin is not None:  # overlapping passages of one document collapse into one source
            merged = merge(kept[twin], stored)
            if len(merged.chunk.text) <= MERGED_MAX_CHARS:
                kept[twin] = merged
                hits[twin] = replace(hits[twin], chunk=merged.chunk)
            continue
        if len(hits) >= k:
            continue
        kept.append(stored)
        hits.append(
            Hit(
                chunk_id=cid,
                chunk=stored.chunk,
                score=score,
                dense_rank=dense_rank.get(cid),
                lexical_rank=lexical_rank.get(cid),
                dense_score=dense_score.get(cid),
            )
        )
    return hits
