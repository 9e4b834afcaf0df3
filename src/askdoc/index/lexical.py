"""The embedded store's lexical search: FTS5 BM25 top-k over a question's content terms, cheaper on
large indexes than the plain query, and the highest score a passage could reach (the bound score
fusion divides by)."""

from __future__ import annotations

from typing import Protocol

from askdoc.text import BM25_K1, KEEP_RAREST, content_terms, fts_query, fts_term, idf, rare_terms


class FtsIndex(Protocol):
    """What lexical search needs of ``IndexReader``: FTS5 queries and FTS5 term counts."""

    def lexical(self, fts_query: str, k: int) -> list[tuple[int, float]]: ...

    def term_frequency(self, fts_term: str) -> int: ...


def bm25_bound(reader: FtsIndex, text: str, total: int) -> float:
    """The highest BM25 score a passage could reach for ``text``: ``(k1 + 1) * sum(idf)`` over
    its content terms found in the index. Call inside a snapshot."""
    freqs = [reader.term_frequency(fts_term(t)) for t in content_terms(text)]
    return (BM25_K1 + 1) * sum(idf(df, total) for df in freqs if df > 0)


def lexical_search(
    reader: FtsIndex, text: str, total: int, k: int, common_fraction: float
) -> list[tuple[int, float]]:
    """The BM25 top ``k`` over all the question's content terms: the same ranking as
    ``reader.lexical(build_fts_query(text), k)``, cheaper on large indexes. Call inside a snapshot.

    Common words match most passages and ranking every one of those rows is most of FTS5's time.
    So the terms are split by document frequency (``text.rare_terms``: common = in more than
    ``common_fraction`` of the ``total`` passages). First only the passages with a rare term
    are ranked, with every term's BM25 weight: ``R AND C`` and ``R NOT C`` split them and
    score them in full. A passage with only common terms scores below
    ``(k1 + 1) * sum(idf of the common terms)``; when the k-th passage found scores above that,
    nothing else can enter the top k and these are the answer. Otherwise (few or weak rare-term
    passages) the full query runs. Document frequencies are FTS5's own counts (``term_frequency``
    matches each quoted term, porter-stemmed as indexed), the numbers bm25() uses.
    """
    terms = content_terms(text)
    full = fts_query(terms)
    if len(terms) <= KEEP_RAREST or common_fraction >= 1.0:
        return reader.lexical(full, k)
    freqs = [reader.term_frequency(fts_term(t)) for t in terms]
    rare = rare_terms(terms, freqs, total, common_fraction)
    common = [(t, df) for t, df in zip(terms, freqs, strict=True) if df > 0 and t not in rare]
    if not rare or not common:
        return reader.lexical(full, k)
    with_rare = fts_query(rare)
    with_common = fts_query(t for t, _ in common)
    found = reader.lexical(f"({with_rare}) AND ({with_common})", k)
    found += reader.lexical(f"({with_rare}) NOT ({with_common})", k)
    best = sorted(found, key=lambda hit: (-hit[1], hit[0]))[:k]
    only_common = (BM25_K1 + 1) * sum(idf(df, total) for _, df in common)
    if len(best) == k and best[-1][1] > only_common:
        return best
    return reader.lexical(full, k)
