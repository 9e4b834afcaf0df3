"""Pure text helpers shared by every layer: cleaning untrusted text, words, stopwords, FTS5
queries."""

from __future__ import annotations

import functools
import math
import re
import threading
from collections.abc import Iterable, Sequence
from typing import Any

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself yourselves also tell know many much say said
    does did get got let may might must shall us one ones""".split()
)
MAX_QUERY_TERMS = 32
MIN_ANSWER_WORDS = 4
"""A sentence with fewer words ("Yes.", "x = 1", a label) is never an answer."""
KEEP_RAREST = 2
"""``rare_terms`` always counts a question's two rarest found terms as rare."""
_WORD = re.compile(r"\w+", re.UNICODE)
CONTROL_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]+")
"""C0 controls except tab and newline, DEL, C1 controls, bidi overrides, embeddings, isolates."""
SURROGATES = re.compile("[\ud800-\udfff]")
"""Lone surrogates (undecodable bytes kept by ``surrogateescape``)."""


def clean_text(text: str) -> str:
    """Normalise line ends to ``\\n``, then drop C0 (except ``\\n``/``\\t``), DEL, C1 and bidi
    override/embedding/isolate characters; lone surrogates become U+FFFD."""
    text = CONTROL_CHARS.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return SURROGATES.sub("\ufffd", text)


def one_line(text: str) -> str:
    """Untrusted text on one line: control characters removed, runs of whitespace one space."""
    return " ".join(clean_text(text).split())


def describe_error(exc: BaseException, limit: int = 150) -> str:
    """A short one-line description of an exception, safe to show in a terminal."""
    msg = one_line(str(exc))
    msg = f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters, digits, underscore runs)."""
    return [w.lower() for w in _WORD.findall(text)]


def content_terms(text: str) -> list[str]:
    """Distinct non-stopword terms in order of first appearance, at most MAX_QUERY_TERMS."""
    seen: dict[str, None] = {}
    for word in words(text):
        if word in STOPWORDS or (len(word) == 1 and not word.isdigit()):
            continue
        seen.setdefault(word, None)
    return list(seen)[:MAX_QUERY_TERMS]


def fts_term(term: str) -> str:
    """One term as an FTS5 string literal: operators, columns and quotes lose their meaning."""
    return '"' + term.replace('"', '""') + '"'


def fts_query(terms: Iterable[str]) -> str:
    """An FTS5 MATCH expression OR-ing ``terms``; "" when there are none.

    Every term is a quoted string (``fts_term``), so no user text (``AND``, ``NEAR(``, ``col:``,
    ``*``, ``^``, quotes, parentheses) is ever read as FTS5 syntax.
    """
    return " OR ".join(fts_term(t) for t in terms)


def build_fts_query(text: str) -> str:
    """An FTS5 MATCH expression OR-ing all the question's content terms; "" when there are none."""
    return fts_query(content_terms(text))


def rare_terms(
    terms: Sequence[str], doc_freqs: Sequence[int], total: int, max_fraction: float
) -> list[str]:
    """The question's rare terms, in question order: those found in at most ``max_fraction`` of
    the ``total`` passages, and always the ``KEEP_RAREST`` rarest found ones (ties: the earlier).

    ``doc_freqs[i]`` is how many passages contain ``terms[i]`` (as FTS5 matches it). A term found
    nowhere is never rare (it matches nothing). With at most ``KEEP_RAREST`` terms, all are rare.
    """
    if len(terms) <= KEEP_RAREST:
        return list(terms)
    found = sorted((df, i) for i, df in enumerate(doc_freqs) if df > 0)
    rarest = {i for _, i in found[:KEEP_RAREST]}
    limit = max_fraction * total
    return [t for i, t in enumerate(terms) if i in rarest or 0 < doc_freqs[i] <= limit]


BM25_K1 = 1.2
"""FTS5's bm25() constant k1 (fts5_aux.c): one term adds less than idf * (k1 + 1) to a score."""


def idf(doc_freq: int, total: int) -> float:
    """How much a term found in ``doc_freq`` of ``total`` passages says: FTS5's bm25() idf,
    ``log((N - df + 0.5) / (df + 0.5))`` floored at 1e-6 (fts5_aux.c). The one idf of askdoc:
    retrieval's BM25 bounds, the answer step's term weights and the refusal evidence (a term in
    more than half the passages weighs almost nothing)."""
    value = math.log((total - doc_freq + 0.5) / (doc_freq + 0.5))
    return value if value > 0.0 else 1e-6


@functools.lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """The Porter stem of a lower-case word ("deployed", "deployment" -> "deploy"): the
    algorithm of FTS5's ``porter`` tokenizer, so the answer step matches words as the index
    does (snowballstemmer's "porter"; 13 of 10,014 words of the eval corpora differ, short words
    such as "is" and "us")."""
    stemmer, lock = _porter()
    with lock:  # a Snowball stemmer keeps its state in the object while it works
        return str(stemmer.stemWord(word))


@functools.cache
def _porter() -> tuple[Any, threading.Lock]:
    import snowballstemmer

    return snowballstemmer.stemmer("porter"), threading.Lock()
