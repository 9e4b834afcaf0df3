"""The check of a generated answer against its sources: each sentence is supported by a verbatim
sentence of a source (quoted with file, line and span), or marked unsupported; numbers and names
found in no cited passage and ``[n]`` markers that cite nothing or the wrong source are flagged."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from askdoc.answer import sentence_candidates
from askdoc.ingest import split_sentences
from askdoc.text import STOPWORDS, stem, words
from askdoc.types import AnswerSentence, Chunk, Hit, Source

Span = tuple[int, int]
EmbedFn = Callable[[Sequence[str]], np.ndarray]

MARKER = re.compile(r"\[\s*(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\s*\]")
"""A citation marker: ``[2]``, ``[1, 3]``."""
_LEADING_MARKERS = re.compile(r"(?:\s*\[\s*\d{1,3}(?:\s*[,;]\s*\d{1,3})*\s*\])+")
_ENUMERATOR = re.compile(r"^(?:\(?\d{1,2}[.)]|[-*\u2022])$")
"""A list item's number or bullet, split off as a "sentence" of its own."""
META = frozenset(
    "answer answers passage passages question document documents text context information "
    "following mentioned provided given states stated says".split()
)
"""Words about the answer itself ("The answer is:"), not about the documents' subject."""
_TOKEN = re.compile(r"\d[\d,.]*\d|\d|[^\W\d_][\w'’]*", re.UNICODE)
NUMBER_WORDS = {
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
    "eleven": "11",
    "twelve": "12",
    "twenty": "20",
    "thirty": "30",
    "forty": "40",
    "fifty": "50",
    "hundred": "100",
    "thousand": "1000",
    "million": "1000000",
    "billion": "1000000000",
}


@dataclass(frozen=True)
class GroundingParams:
    """How a sentence's support is scored and when it counts as supported."""

    cosine_weight: float = 0.5
    """Weight of the cosine between the generated sentence and a source sentence."""
    coverage_weight: float = 0.5
    """Weight of the share of the generated sentence's words (names and numbers count double)
    found in the source sentence."""
    threshold: float = 0.68
    """A sentence is supported when its best source sentence scores at least this (and none of
    its numbers or names is missing from the passages it cites)."""


DEFAULT_PARAMS = GroundingParams()


@dataclass(frozen=True)
class SentenceCheck:
    """The verdict on one sentence of a generated answer."""

    text: str
    """The sentence as the model wrote it, markers included."""
    start: int
    end: int
    """Its span in the generated answer."""
    claim: bool
    """False for a sentence with nothing to check (no content word)."""
    supported: bool
    score: float
    """Support score of its best source sentence (cosine and word coverage)."""
    support: AnswerSentence | None
    """The best-supporting source sentence, verbatim, with its file span and line: the quote."""
    cited: tuple[int, ...] = ()
    """The sources its ``[n]`` markers name, in order."""
    missing: tuple[str, ...] = ()
    """Its numbers and names found in no passage it cites (in no source when it cites none).
    A sentence is supported only when they are all in its supporting sentence's passage."""
    no_source: tuple[int, ...] = ()
    """Markers naming a source that does not exist."""
    wrong_source: tuple[int, ...] = ()
    """Markers naming a source that does not support the sentence."""

    @property
    def verdict(self) -> str:
        """``supported``, ``miscited`` (supported, but a marker is wrong), ``unsupported`` or
        ``no claim``."""
        if not self.claim:
            return "no claim"
        if not self.supported:
            return "unsupported"
        wrong = self.no_source or self.wrong_source or self.missing
        return "miscited" if wrong else "supported"

    @property
    def ok(self) -> bool:
        """Nothing to flag."""
        return self.verdict in ("supported", "no claim")

    def problems(self) -> list[str]:
        """What is wrong, in words, most important first."""
        out = []
        if self.claim and not self.supported and not self.missing:
            out.append("no source sentence says this")
        if self.missing:
            where = "in no cited passage" if self.cited else "in no source"
            out.append(", ".join(f'"{m}"' for m in self.missing) + f" {where}")
        if self.no_source:
            out.append(", ".join(f"[{n}]" for n in self.no_source) + " cites no source")
        if self.wrong_source:
            marks = ", ".join(f"[{n}]" for n in self.wrong_source)
            out.append(f"{marks} does not support it")
        return out


def markers(text: str) -> list[int]:
    """The source numbers of the ``[n]`` markers of ``text``, in order."""
    out: list[int] = []
    for match in MARKER.finditer(text):
        out += [int(n) for n in re.split(r"\s*[,;]\s*", match.group(1))]
    return list(dict.fromkeys(out))


def strip_markers(text: str) -> str:
    return " ".join(MARKER.sub(" ", text).split()).replace(" .", ".").replace(" ,", ",")


def split_answer(text: str) -> list[Span]:
    """Sentence spans of a generated answer; a marker after the full stop ("... daily. [1]")
    belongs to the sentence before it."""
    spans: list[Span] = []
    for a, b in split_sentences(text):
        lead = _LEADING_MARKERS.match(text, a, b)
        if lead and spans:
            spans[-1] = (spans[-1][0], lead.end())
            a = lead.end()
            while a < b and text[a].isspace():
                a += 1
        if a < b and not _ENUMERATOR.match(text[a:b]):
            spans.append((a, b))
    return spans


def normal(token: str) -> str:
    """A number or word as compared: digits without thousands separators, number words as
    digits, words lower-case and stemmed."""
    low = re.sub(r"['’]s$", "", token.lower().strip("'’-.,"))
    if low and low[0].isdigit():
        return low.replace(",", "")
    return NUMBER_WORDS.get(low, stem(low))


COMMON_NUMBERS = frozenset({"one", "two"})
"""Number words too common in ordinary phrasing ("the two countries") to be flagged."""


def key_terms(sentence: str) -> list[str]:
    """The numbers and names of a generated sentence: tokens with a digit, number words (but
    "one" and "two"), capitalised words not opening a sentence or a clause, and acronyms. As
    written, distinct."""
    out: dict[str, None] = {}
    for match in _TOKEN.finditer(sentence):
        token = re.sub(r"['’]s$", "", match.group().strip("'’-.,"))
        low = token.lower()
        if not token or low in STOPWORDS or low in COMMON_NUMBERS:
            continue
        before = sentence[: match.start()].rstrip()
        first = not before or before[-1] in ".?!:;\"'(“"
        if token[0].isdigit() or low in NUMBER_WORDS:
            out.setdefault(token, None)
        elif token[0].isupper() and (not first or (len(token) > 1 and token.isupper())):
            out.setdefault(token, None)
    return list(out)


def claim_terms(claim: str) -> list[str]:
    """The claim's content words and numbers (``normal`` form, distinct), without stopwords
    and words about the answer itself (``META``)."""
    out: dict[str, None] = {}
    for match in _TOKEN.finditer(claim):
        low = re.sub(r"['’]s$", "", match.group().lower().strip("'’.,"))
        if low in STOPWORDS or low in META or (len(low) < 2 and not low.isdigit()):
            continue
        out.setdefault(normal(low), None)
    return list(out)


def is_claim(claim: str, keys: Sequence[str]) -> bool:
    """Something that can be true or false of the documents: not a question, not only words
    about the answer ("The answer is:"), and either four words long or holding a name or
    number ("1", "Germany")."""
    if claim.rstrip().endswith("?") or not claim_terms(claim):
        return False
    return len(words(claim)) >= 4 or bool(keys)


def present(key: str, vocabulary: set[str]) -> bool:
    """A number or name of a claim is in a text's ``vocabulary`` (``normal`` forms); a name
    also as the start of a longer word ("Korea" in "Korean")."""
    term = normal(key)
    if term in vocabulary:
        return True
    return term.isalpha() and len(term) >= 4 and any(w.startswith(term) for w in vocabulary)


def _vocabulary(text: str) -> set[str]:
    return {normal(t.group()) for t in _TOKEN.finditer(text)}


def coverage(
    claim: str, keys: Sequence[str], candidate: str, known: set[str] | frozenset[str] = frozenset()
) -> float:
    """Share of the claim's content words found in ``candidate``. Numbers and names weigh
    double, and so do words that no source uses at all (``known``: the sources' words, in
    ``normal`` form): a word from nowhere is what an invented detail looks like."""
    have = _vocabulary(candidate)
    keyed = {normal(k) for k in keys}
    terms = set(claim_terms(claim)) | keyed
    weight = {t: 2.0 if t in keyed or (known and t not in known) else 1.0 for t in terms}
    total = sum(weight.values())
    return sum(w for t, w in weight.items() if t in have) / total if total else 0.0


def _hits(sources: Sequence[Source]) -> list[Hit]:
    return [
        Hit(
            0,
            Chunk(s.path, 0, s.text, s.start, s.end, s.line_start, s.line_end, s.page, s.heading),
            s.score,
        )
        for s in sources
    ]


def check(
    text: str,
    sources: Sequence[Source],
    embed: EmbedFn,
    stored: Sequence[Mapping[Span, np.ndarray]] = (),
    params: GroundingParams = DEFAULT_PARAMS,
    question: str = "",
) -> tuple[SentenceCheck, ...]:
    """Check every sentence of the generated ``text`` against ``sources`` (numbered from 1).
    ``stored``: per source, the sentence vectors pooled at index time keyed by absolute span;
    a source sentence without one is embedded now, as are the generated sentences. Numbers and
    names the ``question`` itself holds are the asker's, not the model's: never flagged."""
    spans = split_answer(text)
    if not spans:
        return ()
    candidates = sentence_candidates(_hits(sources))
    known = _vocabulary(" ".join(s.text for s in sources))
    claims = [strip_markers(text[a:b]) for a, b in spans]
    asked = _vocabulary(question)
    vectors = _vectors(claims, candidates, embed, stored)
    claim_vectors, candidate_vectors = vectors[: len(claims)], vectors[len(claims) :]
    out = []
    for i, (a, b) in enumerate(spans):
        claim = claims[i]
        keys = key_terms(claim)
        if not is_claim(claim, keys):
            out.append(
                SentenceCheck(text[a:b], a, b, False, True, 0.0, None, tuple(markers(text[a:b])))
            )
            continue
        scores = [
            params.cosine_weight * float(candidate_vectors[j] @ claim_vectors[i])
            + params.coverage_weight * coverage(claim, keys, c[3], known)
            for j, c in enumerate(candidates)
        ]
        own = [k for k in keys if not present(k, asked)]  # the asker's are never flagged
        out.append(_verdict(text, (a, b), claim, own, candidates, scores, sources, params))
    return tuple(out)


def _shown(source: Source) -> str:
    """What the model saw of a source: its heading path and its text."""
    return f"{source.heading}\n{source.text}"


def _verdict(
    text: str,
    span: Span,
    claim: str,
    keys: list[str],
    candidates: Sequence[tuple[int, int, int, str, int, str]],
    scores: list[float],
    sources: Sequence[Source],
    params: GroundingParams,
) -> SentenceCheck:
    a, b = span
    cited = tuple(markers(text[a:b]))
    existing = [n for n in cited if 1 <= n <= len(sources)]
    no_source = tuple(n for n in cited if n not in existing)
    scope = existing or range(1, len(sources) + 1)
    evidence = _vocabulary(" ".join(_shown(sources[n - 1]) for n in scope))
    missing = tuple(k for k in keys if not present(k, evidence))
    best = max(range(len(scores)), key=lambda j: scores[j], default=None)
    support = None
    score = 0.0
    if best is not None:
        number, start, end, sentence, line, _ = candidates[best]
        score = scores[best]
        support = AnswerSentence(
            sentence, number, start, end, line, round(score, 4), line + sentence.count("\n")
        )
    home = _vocabulary(_shown(sources[support.source - 1])) if support is not None else set()
    supported = score >= params.threshold and all(present(k, home) for k in keys)
    wrong = []
    for n in existing:
        own = [s for s, c in zip(scores, candidates, strict=True) if c[0] == n]
        own_words = _vocabulary(_shown(sources[n - 1]))
        lacks = any(not present(k, own_words) for k in keys)
        if not own or max(own) < params.threshold or lacks:
            wrong.append(n)
    return SentenceCheck(
        text[a:b],
        a,
        b,
        True,
        supported,
        round(score, 4),
        support,
        cited,
        missing,
        no_source,
        tuple(wrong),
    )


def _vectors(
    claims: Sequence[str],
    candidates: Sequence[tuple[int, int, int, str, int, str]],
    embed: EmbedFn,
    stored: Sequence[Mapping[Span, np.ndarray]],
) -> np.ndarray:
    """The claims' vectors, then one per candidate: stored when pooled at index time, else
    embedded with the claims in one batch."""
    pooled: dict[int, np.ndarray] = {}
    for j, (number, start, end, *_rest) in enumerate(candidates):
        vector = stored[number - 1].get((start, end)) if number <= len(stored) else None
        if vector is not None:
            pooled[j] = np.asarray(vector, dtype=np.float32)
    fresh = [j for j in range(len(candidates)) if j not in pooled]
    texts = list(claims) + [candidates[j][5] for j in fresh]
    embedded = np.asarray(embed(texts), dtype=np.float32)
    for row, j in enumerate(fresh, len(claims)):
        pooled[j] = embedded[row]
    dim = embedded.shape[1]
    rows = [embedded[: len(claims)]]
    rows.append(
        np.stack([pooled[j] for j in range(len(candidates))])
        if candidates
        else np.zeros((0, dim), np.float32)
    )
    return np.concatenate(rows)
