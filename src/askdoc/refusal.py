"""Deciding "not in the documents" from evidence: what an answer rests on, and a calibrated rule.

One fixed cosine cannot tell "the documents mention North Korean ammunition" from "the documents
say what North Korea's GDP growth is". So an answer is judged on several signals at once
(``Evidence``): how well its best sentence scores, whether the question's key words (names,
numbers, rare terms) are known to the index at all and present where the answer was found, and
whether the sentence holds the kind of thing asked for (a date for "when", a number for "how
many", a place for "where", a person for "who"). A logistic model (``RefusalModel``) turns them
into the probability that the documents answer the question; below ``min_confidence`` askdoc
says "Not found in the documents". The weights were fitted on the tuning half of eval/atlas
(scripts/tune_refusal.py, docs/evaluation.md); ``askdoc eval FILE --calibrate`` fits the
threshold to a user's own questions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from askdoc.text import STOPWORDS, idf, stem, words

DocFreqFn = Callable[[str], int]

_TOKEN = re.compile(r"[\w][\w'-]*", re.UNICODE)
_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|"
    "hundred|thousand|million|billion|dozen|several|few|half|quarter"
)
_NUMBER = re.compile(rf"\d|\b({_NUMBER_WORDS})\b", re.I)
_DATE = re.compile(
    rf"\b({_MONTHS}|\d{{3,4}}s?|\d{{1,2}}:\d\d|monday|tuesday|wednesday|thursday|friday|"
    r"saturday|sunday|century|decade|spring|summer|autumn|winter)\b",
    re.I,
)
_CAUSE = re.compile(
    r"\b(because|caused|cause|due to|since|reason|so that|as a result|owing to|after|"
    r"led to|in order to|to allow|to avoid|to prevent|thanks to|for fear)\b",
    re.I,
)
_CLAUSE = r"(?:^|[.?!;,]\s*|\b(?:and|but|so|then)\s+)"
ASKS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("cause", re.compile(rf"{_CLAUSE}why\b|\bwhat (caused|was the reason|made)\b|\breason", re.I)),
    (
        "date",
        re.compile(
            rf"{_CLAUSE}when\b|\b(what|which) (date|day|year|month|time|century|decade)\b|"
            r"\bhow long ago\b|\bin what year\b",
            re.I,
        ),
    ),
    (
        "number",
        re.compile(
            r"\bhow (many|much|long|far|old|big|large|often|tall|high|deep|wide|heavy|fast)\b|"
            r"\b(what|which) (is|was|are|were) the (population|number|size|height|length|"
            r"area|price|cost|weight|speed|depth|width|capacity|score|total|amount)\b",
            re.I,
        ),
    ),
    ("place", re.compile(rf"{_CLAUSE}where\b|\b(what|which) (town|city|country|place)\b", re.I)),
    ("person", re.compile(rf"{_CLAUSE}(who|whom|whose)\b", re.I)),
)
"""What a question asks for, by its wording; the first match wins."""


def asked_type(question: str) -> str:
    """ "cause", "date", "number", "place", "person", or "" when the wording does not say."""
    for kind, pattern in ASKS:
        if pattern.search(question):
            return kind
    return ""


def _names(text: str, exclude: set[str]) -> list[str]:
    """Capitalised words of ``text`` not at the start of a sentence, not in ``exclude``."""
    out = []
    for match in _TOKEN.finditer(text):
        token = match.group()
        before = text[: match.start()].rstrip()
        starts = not before or before[-1] in ".?!:;\"'(\n“"
        if token[:1].isupper() and not starts and stem(token.lower()) not in exclude:
            out.append(token)
    return out


def holds_type(kind: str, sentence: str, question: str) -> bool:
    """The sentence holds the kind of thing asked for (a place or person not already named in
    the question)."""
    if kind == "cause":
        return bool(_CAUSE.search(sentence))
    if kind == "date":
        return bool(_DATE.search(sentence))
    if kind == "number":
        return bool(_NUMBER.search(sentence))
    asked = {stem(w) for w in words(question)}
    return bool(_names(sentence, asked))


_DEMONYM = re.compile(r"[A-Z][a-z]+(?:an|ese|ish|i)$")
"""A capitalised adjective of nationality or place ("American", "Korean", "Danish"), which
people use where documents name the country: not a key word."""


def key_terms(question: str) -> list[str]:
    """The words an answer must be about: names (capitalised, not first in the question, not a
    demonym followed by a lower-case word), numbers and codes (any digit). Lower-case,
    distinct, in question order."""
    keys: dict[str, None] = {}
    for match in _TOKEN.finditer(question):
        token = match.group()
        after = question[match.end() :].lstrip()
        if _DEMONYM.fullmatch(token) and after[:1].islower():
            continue
        for part in words(token):
            if part in STOPWORDS or (len(part) < 2 and not part.isdigit()):
                continue
            named = token[:1].isupper() and match.start() > 0
            if named or any(c.isdigit() for c in part) or any(c.isupper() for c in token[1:]):
                keys.setdefault(part, None)
    return list(keys)


class Scored(Protocol):
    """A scored candidate sentence (``answer.Candidate``)."""

    @property
    def text(self) -> str: ...

    @property
    def score(self) -> float: ...

    @property
    def cosine(self) -> float: ...

    @property
    def masked(self) -> float: ...

    @property
    def source(self) -> int: ...


def without_names(question: str) -> str:
    """The question with its names (capitalised key words, not numbers) replaced by "it":
    "Who founded The Lisk Sentinel?" -> "Who founded it?"."""
    names = {k for k in key_terms(question) if not any(c.isdigit() for c in k)}
    out: list[str] = []
    for token in re.findall(r"[\w'-]+|[^\w'-]+", question):
        parts = set(words(token))
        if parts and parts <= names | {"s"}:
            if out and out[-1] == "it":
                continue
            if len(out) > 1 and not out[-1].strip() and out[-2] == "it":
                out.pop()
                continue
            out.append("it")
        else:
            out.append(token)
    return re.sub(r"\b(?:[Tt]he|[Aa]n?) it\b", "it", "".join(out))


@dataclass(frozen=True)
class Evidence:
    """What an answer rests on; every value between 0 and 1 (``score`` about 0-1.5)."""

    score: float
    """The best sentence's score (cosine + rare-term overlap + passage similarity + cue)."""
    passage: float
    """Cosine of the best sentence's passage to the question."""
    unknown: float
    """Share of the question's key words (names, numbers, codes) found nowhere in the index."""
    coverage: float
    """Share of the question's idf weight (key words count double) found in the supporting
    passage, its heading or its file name."""
    kind: float
    """1 when the sentence holds what is asked (a date for "when"...), 0 when it does not,
    0.5 when the question does not say what it asks for."""
    cosine: float = 0.0
    """The best sentence's own cosine to the question."""
    margin: float = 0.0
    """How far the best sentence scores above the next different one."""
    attribute: float = 0.0
    """Share of the idf weight of the question's other words (not its key words) found in the
    best sentence itself: what is asked about the thing, not the thing."""
    keys_in_sentence: float = 1.0
    """Share of the question's known key words found in the best sentence itself."""
    masked: float = 0.0
    """Best cosine, among the sentences of the top passage, to the question with its names
    taken out ("Who founded it?"): is what is asked about the thing there at all, or only the
    thing? An article naming a newspaper but not its founder scores low here."""

    def values(self) -> tuple[float, ...]:
        return tuple(getattr(self, name) for name in FEATURES)


FEATURES = (
    "score",
    "passage",
    "unknown",
    "coverage",
    "kind",
    "cosine",
    "margin",
    "attribute",
    "keys_in_sentence",
    "masked",
)


def _share(weights: dict[str, float], text: str) -> float:
    present = {stem(w) for w in words(text)}
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if stem(t) in present) / total if total else 1.0


def gather(
    question: str,
    best: Scored,
    scored: Sequence[Scored],
    passage_score: float,
    context: str,
    doc_freq: DocFreqFn,
    total: int,
) -> Evidence:
    """The evidence for answering ``question`` with ``best`` (the top of ``scored``) found in
    ``context`` (the passage text, heading and document path)."""
    keys = key_terms(question)
    freqs = {t: doc_freq(t) for t in keys}
    unknown = sum(1 for t in keys if freqs[t] == 0) / len(keys) if keys else 0.0
    weights: dict[str, float] = {}
    for term in dict.fromkeys(
        [w for w in words(question) if w not in STOPWORDS and len(w) > 1] + keys
    ):
        df = freqs[term] if term in freqs else doc_freq(term)
        if df == 0 and term not in freqs:
            continue  # an ordinary word the documents never use says nothing either way
        weights[term] = idf(df, total) * (2.0 if term in freqs else 1.0)
    kind = asked_type(question)
    holds = 0.5 if not kind else float(holds_type(kind, best.text, question))
    other = next((c for c in scored if c.text != best.text), None)
    known_keys = {t: w for t, w in weights.items() if t in freqs and freqs[t] > 0}
    attribute = {t: w for t, w in weights.items() if t not in freqs}
    return Evidence(
        score=best.score,
        passage=passage_score,
        unknown=unknown,
        coverage=_share(weights, context),
        kind=holds,
        cosine=best.cosine,
        margin=best.score - other.score if other is not None else 1.0,
        attribute=_share(attribute, best.text),
        keys_in_sentence=_share(known_keys, best.text),
        masked=max((c.masked for c in scored if c.source == best.source), default=0.0),
    )


@dataclass(frozen=True)
class RefusalModel:
    """P(the documents answer) = sigmoid(bias + sum(weights * evidence))."""

    weights: tuple[float, ...] = (0.0, 0.0, -5.3289, 0.0, 0.123, 0.0, 0.8474, 0.7195, 0.0, 3.9424)
    """Per feature of ``FEATURES``: fitted on eval/atlas-tune.jsonl by scripts/tune_refusal.py
    (features whose weight came out pointing the wrong way were dropped: 0)."""
    bias: float = -1.3534

    def probability(self, evidence: Evidence) -> float:
        z = self.bias + sum(w * v for w, v in zip(self.weights, evidence.values(), strict=True))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


SIGNS = {"unknown": -1.0}
"""The direction each feature must push (all others: more means more likely answered)."""


def fit(
    rows: Sequence[tuple[float, ...]],
    labels: Sequence[bool],
    use: Sequence[str] = FEATURES,
    l2: float = 0.1,
) -> RefusalModel:
    """Logistic regression by Newton's method on the features ``use`` (the others get weight
    0): ``labels`` True where the documents answer the question. A feature whose fitted weight
    points the wrong way (``SIGNS``) is dropped and the rest refitted, so more evidence never
    lowers the probability."""
    import numpy as np

    chosen = [FEATURES.index(name) for name in use]
    while True:
        x = np.asarray([[row[i] for i in chosen] for row in rows], dtype=np.float64)
        w = _newton(np.hstack([np.ones((len(x), 1)), x]), np.asarray(labels, float), l2)
        wrong = [
            i for i, v in zip(chosen, w[1:], strict=True) if v * SIGNS.get(FEATURES[i], 1.0) < 0
        ]
        if not wrong:
            break
        chosen = [i for i in chosen if i not in wrong]
    weights = [0.0] * len(FEATURES)
    for i, v in zip(chosen, w[1:], strict=True):
        weights[i] = round(float(v), 4)
    return RefusalModel(tuple(weights), round(float(w[0]), 4))


def _newton(x: Any, y: Any, l2: float, steps: int = 100) -> Any:
    import numpy as np

    w = np.zeros(x.shape[1])
    ridge = l2 * np.eye(x.shape[1])
    ridge[0, 0] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
        gradient = x.T @ (p - y) + ridge @ w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + ridge + 1e-9 * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return w
