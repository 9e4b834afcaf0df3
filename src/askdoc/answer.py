"""Extractive answers: pick the supporting sentences from the retrieved passages, number the
sources, attach exact citation spans, and decide when the documents do not answer."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from askdoc.ingest import split_sentences
from askdoc.refusal import FEATURES, RefusalModel, asked_type, gather, holds_type
from askdoc.text import MIN_ANSWER_WORDS, content_terms, idf, stem, words
from askdoc.types import NOT_FOUND, Answer, AnswerSentence, Hit, Source


@dataclass(frozen=True)
class AnswerParams:
    """How sentences are scored and when to refuse."""

    max_sentences: int = 3
    min_confidence: float = 0.486
    """Refuse when the probability that the documents answer (``refusal.RefusalModel``) is
    below this."""
    refusal: RefusalModel = RefusalModel()
    margin: float = 0.15
    """Extra sentences must score within this of the best one."""
    lexical_weight: float = 0.3
    """Weight of the question's rare terms found in a sentence (idf-weighted share)."""
    passage_weight: float = 0.3
    """Weight of the passage's own similarity to the question (sentences borrow context)."""
    type_weight: float = 0.1
    """Bonus for a sentence holding what a why/when/how-many question asks for."""
    embed_limit: int = 12
    """Sentences embedded at question time (those without a vector pooled at index time): the
    best by rare-term overlap and passage rank."""
    embed_chars: int = 600
    """Longer sentences are embedded by their first this-many characters."""


@dataclass(frozen=True)
class Candidate:
    source: int
    start: int
    end: int
    text: str
    line: int
    score: float
    cosine: float = 0.0
    """The sentence vector's cosine to the question alone."""
    masked: float = 0.0
    """Its cosine to the question with the names taken out (``refusal.without_names``)."""


Span = tuple[int, int]
EmbedFn = Callable[[Sequence[str]], np.ndarray]
DocFreqFn = Callable[[str], int]
StoredFn = Callable[[Hit], Mapping[Span, np.ndarray]]


def is_statement(text: str, whole_line: bool = False) -> bool:
    """A sentence that can answer: at least four words, not a title or a rule of symbols. A
    title is a short run of words without final punctuation, either in Title Case or alone on
    its line (``whole_line``: "The Treaty of Oakridge" above the text it names)."""
    tokens = words(text)
    if len(tokens) < MIN_ANSWER_WORDS:
        return False
    short = len(tokens) <= 8 and "\n" not in text and text[-1:].isalnum()
    return not (short and (text.istitle() or (whole_line and not _BULLET.match(text))))


_BULLET = re.compile(r"\s*(?:[-*+\u2022]\s|\d{1,3}[.)]\s)")


_PRONOUN_START = re.compile(
    r"^(it|its|they|their|them|he|his|she|her|this|these|those|that)\b", re.I
)


def answer_type_bonus(question: str, sentence: str) -> float:
    """1.0 when the question asks why/when/how many/where/who and the sentence holds a
    cause/date/number/place/person (``refusal.holds_type``)."""
    kind = asked_type(question)
    return 1.0 if kind and holds_type(kind, sentence, question) else 0.0


SentenceCandidate = tuple[int, int, int, str, int, str]
"""(source number, absolute start, end, text, line, text to embed)."""


def sentence_candidates(hits: Sequence[Hit]) -> list[SentenceCandidate]:
    """Every sentence of every hit that can answer (titles, headings and symbol rules are left
    out). A sentence opening with a pronoun ("It was signed in Vienna") is embedded together with
    the sentence before it, which names what the pronoun stands for."""
    out: list[SentenceCandidate] = []
    for number, hit in enumerate(hits, 1):
        chunk = hit.chunk
        headings = {h.strip() for h in chunk.heading.split(" > ")}
        previous = ""
        for a, b in split_sentences(chunk.text):
            text = chunk.text[a:b]
            context = f"{previous} {text}" if previous and _PRONOUN_START.match(text) else text
            previous = text
            whole_line = chunk.text[a - 1 : a] in ("", "\n") and chunk.text[b : b + 1] in ("", "\n")
            if text.strip() in headings or not is_statement(text, whole_line):
                continue
            line = chunk.line_start + chunk.text.count("\n", 0, a)
            out.append((number, chunk.start + a, chunk.start + b, text, line, context))
    return out


def term_weights(question: str, doc_freq: DocFreqFn, total: int) -> dict[str, float]:
    """``text.idf`` of each content term of the question (rare terms weigh most), keyed by
    stem."""
    weights: dict[str, float] = {}
    for term in content_terms(question):
        df = doc_freq(term)
        weights[stem(term)] = max(weights.get(stem(term), 0.0), idf(df, total))
    return weights


def lexical_overlap(sentence: str, weights: dict[str, float]) -> float:
    """Share of the question's idf weight whose terms occur in the sentence."""
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    present = {stem(w) for w in words(sentence)}
    return sum(w for t, w in weights.items() if t in present) / total


def score_sentences(
    question_vector: np.ndarray,
    candidates: list[SentenceCandidate],
    embed: EmbedFn,
    weights: dict[str, float],
    params: AnswerParams,
    passage_scores: Sequence[float] = (),
    question: str = "",
    stored: Sequence[Mapping[Span, np.ndarray]] = (),
    masked_vector: np.ndarray | None = None,
) -> list[Candidate]:
    """Score every candidate whose vector was pooled at index time (``stored``: per source, keyed
    by absolute span); embed the others now, at most ``embed_limit`` of them, best first by
    rare-term overlap and passage rank (the rest are not scored)."""
    if not candidates:
        return []
    overlap = [lexical_overlap(c[3], weights) for c in candidates]
    vectors: dict[int, np.ndarray] = {}
    for i, (src, a, b, *_rest) in enumerate(candidates):
        vector = stored[src - 1].get((a, b)) if src <= len(stored) else None
        if vector is not None:
            vectors[i] = vector
    prior = [o + 0.2 / c[0] for o, c in zip(overlap, candidates, strict=True)]
    missing = [i for i in range(len(candidates)) if i not in vectors]
    missing = sorted(missing, key=lambda i: -prior[i])[: params.embed_limit]
    if missing:
        fresh = embed([candidates[i][5][: params.embed_chars] for i in missing])
        vectors.update(zip(missing, fresh, strict=True))
    scored = []
    for i in sorted(vectors):
        src, a, b, text, line, _context = candidates[i]
        cosine = float(vectors[i] @ question_vector)
        score = cosine + params.lexical_weight * overlap[i]
        if passage_scores:
            score += params.passage_weight * passage_scores[src - 1]
        score += params.type_weight * answer_type_bonus(question, text)
        masked = cosine if masked_vector is None else float(vectors[i] @ masked_vector)
        scored.append(Candidate(src, a, b, text, line, score, cosine, masked))
    return sorted(scored, key=lambda c: (-c.score, c.source, c.start))


def choose(scored: list[Candidate], params: AnswerParams) -> list[Candidate]:
    """The best sentence and up to max-1 more within the margin; no repeats; document order."""
    if not scored:
        return []
    best = scored[0].score
    chosen: list[Candidate] = []
    seen: set[str] = set()
    for cand in scored:
        key = " ".join(cand.text.lower().split())
        if cand.score < best - params.margin or len(chosen) >= params.max_sentences:
            break
        if key in seen:
            continue
        seen.add(key)
        chosen.append(cand)
    return sorted(chosen, key=lambda c: (c.source, c.start))


def make_sources(
    hits: Sequence[Hit],
    highlights: dict[int, tuple[int, int]],
    answered: Mapping[int, Sequence[Span]] | None = None,
) -> tuple[Source, ...]:
    return tuple(
        Source(
            number=n,
            path=hit.chunk.doc_path,
            text=hit.chunk.text,
            start=hit.chunk.start,
            end=hit.chunk.end,
            line_start=hit.chunk.line_start,
            line_end=hit.chunk.line_end,
            page=hit.chunk.page,
            heading=hit.chunk.heading,
            score=hit.dense_score if hit.dense_score is not None else hit.score,
            highlight=highlights.get(n),
            highlights=tuple((answered or {}).get(n, ())),
        )
        for n, hit in enumerate(hits, 1)
    )


def compose(
    question: str,
    searched: str,
    hits: Sequence[Hit],
    question_vector: np.ndarray,
    embed: EmbedFn,
    doc_freq: DocFreqFn,
    total_passages: int,
    params: AnswerParams = AnswerParams(),
    stored: StoredFn | None = None,
    masked_vector: np.ndarray | None = None,
) -> Answer:
    """Build the answer for ``hits``; refuse (found=False) below the confidence threshold.
    ``stored`` gives a hit's sentence vectors pooled at index time, keyed by absolute span."""
    candidates = sentence_candidates(hits)
    weights = term_weights(searched, doc_freq, total_passages)
    passage_scores = [h.dense_score if h.dense_score is not None else 0.0 for h in hits]
    pooled = [stored(hit) for hit in hits] if stored is not None else []
    scored = score_sentences(
        question_vector,
        candidates,
        embed,
        weights,
        params,
        passage_scores,
        question,
        pooled,
        masked_vector,
    )
    highlights: dict[int, tuple[int, int]] = {}
    for cand in scored:
        highlights.setdefault(cand.source, (cand.start, cand.end))
    sources = make_sources(hits, highlights)
    if not scored:
        return Answer(question, searched, False, 0.0, (), sources, NOT_FOUND)
    best = scored[0]
    hit = hits[best.source - 1]
    evidence = gather(
        searched,
        best,
        scored,
        passage_scores[best.source - 1],
        f"{hit.chunk.doc_path}\n{hit.chunk.heading}\n{hit.chunk.text}",
        doc_freq,
        total_passages,
    )
    confidence = params.refusal.probability(evidence)
    facts = dict(zip(FEATURES, evidence.values(), strict=True))
    if confidence < params.min_confidence:
        return Answer(question, searched, False, confidence, (), sources, NOT_FOUND, evidence=facts)
    chosen = choose(scored, params)  # in document order
    answered: dict[int, list[Span]] = {}
    for cand in chosen:
        answered.setdefault(cand.source, []).append((cand.start, cand.end))
    for number, spans in answered.items():
        highlights[number] = spans[0]
    sentences = tuple(
        AnswerSentence(
            c.text, c.source, c.start, c.end, c.line, c.score, c.line + c.text.count("\n")
        )
        for c in chosen
    )
    sources = make_sources(hits, highlights, answered)
    return Answer(question, searched, True, confidence, sentences, sources, evidence=facts)
