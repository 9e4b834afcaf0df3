"""The embedded store's BM25, computed for Milvus's full-text candidates: FTS5's formula
(``bm25(chunks_fts, 1.0, 0.5)``: text words count 1, heading words 0.5; FTS5's idf; k1 = 1.2,
b = 0.75) over the same Porter stems, so a question ranks the same passages in both stores.

Milvus finds the candidates (its own BM25, Lucene's idf, over text and heading alike); askdoc
re-scores them here with what FTS5 would have said, from each passage's words, the number of
passages holding each term and the index's average passage length (in words).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence

from askdoc.text import BM25_K1, idf, stem

BM25_B = 0.75
"""FTS5's bm25() constant b (fts5_aux.c)."""
HEADING_WEIGHT = 0.5
"""The embedded store's weight of the heading column (``schema.LEXICAL``)."""


_TOKEN = re.compile(r"[^\W_]+")
"""A word as FTS5's unicode61 tokenizer sees one: letters and digits (an underscore splits)."""


def fts_words(text: str) -> list[str]:
    """``text``'s words as FTS5's unicode61 tokenizer makes them: lower case, without
    diacritics ("café" is "cafe"), split at anything but a letter or digit ("__init__" is
    "init")."""
    folded = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    return _TOKEN.findall(plain)


def stems(text: str) -> list[str]:
    """The Porter stems of ``text``'s words: what FTS5's ``porter unicode61`` indexes."""
    return [stem(word) for word in fts_words(text)]


def passage_words(text: str, heading: str) -> int:
    """A passage's length as FTS5 counts it: the words of both its columns."""
    return len(fts_words(text)) + len(fts_words(heading))


def fts5_scores(
    terms: Sequence[str],
    passages: Sequence[tuple[int, str, str]],
    doc_freq: Callable[[str], int],
    total: int,
    average_words: float,
) -> list[tuple[int, float]]:
    """(id, score) of each (id, text, heading) passage for the stemmed ``terms``, best first
    (ties by id, as the candidates came)."""
    weights = {term: idf(doc_freq(term), total) for term in dict.fromkeys(terms)}
    average = average_words if average_words > 0 else 1.0
    scored: list[tuple[int, float]] = []
    for pid, text, heading in passages:
        body, head = Counter(stems(text)), Counter(stems(heading))
        length = sum(body.values()) + sum(head.values())
        norm = BM25_K1 * (1 - BM25_B + BM25_B * length / average)
        score = 0.0
        for term, weight in weights.items():
            freq = body[term] + HEADING_WEIGHT * head[term]
            if freq:
                score += weight * freq * (BM25_K1 + 1) / (freq + norm)
        if score > 0:
            scored.append((pid, score))
    order = {pid: i for i, (pid, _, _) in enumerate(passages)}
    return sorted(scored, key=lambda item: (-item[1], order[item[0]]))
