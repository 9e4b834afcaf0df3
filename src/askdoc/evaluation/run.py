"""Evaluation runs: ask every question of a Dataset through an Engine and compute metrics.

Nothing here prints; ``evaluation.cli`` shows progress and ``evaluation.report`` renders the
results.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from askdoc.engine import Engine
from askdoc.errors import EvalError, QuestionError
from askdoc.evaluation import metrics
from askdoc.evaluation.data import Dataset, GoldSource, Progress, QARecord
from askdoc.index.location import StoreLocation
from askdoc.types import Answer, AnswerSentence

DEPTH = 10
"""Passages retrieved per question at least, so that the @10 metrics are meaningful."""
ANSWER_METRICS = ("answer_contains", "passage_contains", "citation_accuracy", "citation_exact")
TAIL_METRICS = (
    "refusal_precision",
    "refusal_recall",
    "pass_rate",
    "latency_p50_ms",
    "latency_p95_ms",
)


def retrieval_names(k: int) -> tuple[str, ...]:
    """The ranking metrics, for ``--k k``."""
    recall = tuple(dict.fromkeys((f"recall@{k}", "recall@10")))
    return ("hit@1", "hit@3", "hit@5", "hit@10", *recall, "mrr@10", "ndcg@10")


def metric_names(k: int) -> tuple[str, ...]:
    """Every summary metric, in report order, for ``--k k``."""
    return (*retrieval_names(k), *ANSWER_METRICS, *TAIL_METRICS)


@dataclass(frozen=True)
class QuestionResult:
    """How one question went. Metric values are None where they do not apply."""

    id: str
    question: str
    unanswerable: bool
    found: bool
    passed: bool
    confidence: float
    answer: str
    cited: str
    first_rank: int | None
    retrieval: dict[str, float] | None
    answer_contains: bool | None
    passage_contains: bool | None
    citation_correct: bool | None
    citation_exact: bool | None
    latency_ms: float | None
    retrieved: tuple[str, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)
    error: str = ""
    evidence: dict[str, float] = field(default_factory=dict)
    """What answering or refusing rested on (``refusal.Evidence``)."""


@dataclass(frozen=True)
class ModeRun:
    """The results of one retrieval mode and their summary (metric name -> value or None)."""

    mode: str
    results: tuple[QuestionResult, ...]
    summary: dict[str, float | None]
    counts: dict[str, int]


@dataclass(frozen=True)
class EvalResult:
    dataset: str
    kind: str
    corpus: str
    index: str
    k: int
    runs: tuple[ModeRun, ...]
    problems: tuple[str, ...] = ()


def _run_one(
    engine: Engine, record: QARecord, mode: str, k: int
) -> tuple[Answer, float | None, str]:
    t0 = time.perf_counter()
    try:
        answer = engine.ask(record.question, k=max(DEPTH, k), mode=mode)
    except QuestionError as exc:
        return (
            Answer(record.question, record.question, False, 0.0, message=str(exc)),
            None,
            str(exc),
        )
    return answer, (time.perf_counter() - t0) * 1000.0, ""


def _ranking(
    record: QARecord, answer: Answer, doc_ids: dict[str, str]
) -> tuple[list[frozenset[int]], list[str]]:
    """Per ranked item, the gold indices it matches; and the items' names. BEIR ranks documents
    (a document's first passage), Q&A ranks passages."""
    if not doc_ids:
        names = [s.location for s in answer.sources]
        matches = [
            frozenset(i for i, g in enumerate(record.sources) if g.matches(s))
            for s in answer.sources
        ]
        return matches, names
    ids = list(dict.fromkeys(doc_ids.get(s.path, s.path) for s in answer.sources))
    return [frozenset(i for i, g in enumerate(record.sources) if g.path == d) for d in ids], ids


def _retrieval(record: QARecord, matches: list[frozenset[int]], k: int) -> dict[str, float] | None:
    if not record.sources:
        return None
    n = len(record.sources)
    values = {f"hit@{c}": metrics.hit_at(matches, c) for c in (1, 3, 5, 10)}
    values.update({f"recall@{c}": metrics.recall_at(matches, n, c) for c in (k, 10)})
    values["mrr@10"] = metrics.reciprocal_rank(matches, 10)
    values["ndcg@10"] = metrics.ndcg_binary(matches, n, 10)
    return values


def _on_sentence(gold: GoldSource, sentence: AnswerSentence) -> bool:
    """The gold line is one of the sentence's lines (a sentence may run over several)."""
    last = int(getattr(sentence, "line_end", 0) or sentence.line)
    return gold.line is None or sentence.line <= gold.line <= last


def judge(record: QARecord, answer: Answer, k: int, doc_ids: dict[str, str]) -> QuestionResult:
    """Score one answer against its record (latency and error are filled in by the caller)."""
    matches, names = _ranking(record, answer, doc_ids)
    retrieval = _retrieval(record, matches, k)
    if retrieval is not None and record.grades:
        retrieval["ndcg@10"] = metrics.ndcg_graded(names, dict(record.grades), 10)
    by_number = {s.number: s for s in answer.sources}
    cited = [by_number[n] for n in dict.fromkeys(s.source for s in answer.sentences)]
    text = " ".join(s.text for s in answer.sentences) if answer.found else ""
    answerable = not record.unanswerable
    contains = metrics.contains_any(text, record.answers) if answerable and record.answers else None
    in_passages = None
    if answerable and record.answers:
        in_passages = any(metrics.contains_any(s.text, record.answers) for s in answer.sources[:k])
    correct = exact = None
    if answerable and record.sources and not doc_ids:
        correct = any(g.matches(s) for s in cited for g in record.sources)
        exact = any(
            g.matches(by_number[s.source]) and _on_sentence(g, s)
            for s in answer.sentences
            for g in record.sources
        )
    rank = metrics.first_relevant_rank(matches)
    if record.unanswerable:
        passed = not answer.found
    elif doc_ids:
        passed = rank is not None and rank <= k
    else:
        passed = answer.found and contains is not False and correct is not False
    return QuestionResult(
        id=record.id,
        question=record.question,
        unanswerable=record.unanswerable,
        found=answer.found,
        passed=passed,
        confidence=round(answer.confidence, 4),
        answer=text or answer.message,
        cited=", ".join(doc_ids.get(s.path, s.location) for s in cited),
        first_rank=rank,
        retrieval=retrieval,
        answer_contains=contains,
        passage_contains=in_passages,
        citation_correct=correct,
        citation_exact=exact,
        latency_ms=None,
        retrieved=tuple(names),
        timings_ms={k: round(v * 1000, 2) for k, v in answer.timings.items()},
        evidence=dict(answer.evidence),
    )


def summarize(results: Sequence[QuestionResult], k: int) -> dict[str, float | None]:
    """The summary metrics of one run (None where no question applies)."""
    answerable = [r for r in results if not r.unanswerable]
    summary: dict[str, float | None] = {}
    for name in retrieval_names(k):
        summary[name] = metrics.mean(r.retrieval[name] for r in results if r.retrieval)
    summary["answer_contains"] = metrics.mean(r.answer_contains for r in answerable)
    summary["passage_contains"] = metrics.mean(r.passage_contains for r in answerable)
    summary["citation_accuracy"] = metrics.mean(r.citation_correct for r in answerable)
    summary["citation_exact"] = metrics.mean(r.citation_exact for r in answerable)
    precision, recall = metrics.refusal_scores(
        [not r.found for r in results], [r.unanswerable for r in results]
    )
    summary["refusal_precision"], summary["refusal_recall"] = precision, recall
    summary["pass_rate"] = metrics.mean(r.passed for r in results)
    latencies = [r.latency_ms for r in results if r.latency_ms is not None]
    summary["latency_p50_ms"] = metrics.percentile(latencies, 50)
    summary["latency_p95_ms"] = metrics.percentile(latencies, 95)
    return summary


def count(results: Sequence[QuestionResult]) -> dict[str, int]:
    return {
        "questions": len(results),
        "answerable": sum(not r.unanswerable for r in results),
        "unanswerable": sum(r.unanswerable for r in results),
        "refused": sum(not r.found for r in results),
        "passed": sum(r.passed for r in results),
        "errors": sum(bool(r.error) for r in results),
    }


def run_mode(
    engine: Engine, dataset: Dataset, mode: str, k: int, progress: Progress | None = None
) -> ModeRun:
    """Ask every question in one retrieval mode and score the answers."""
    results: list[QuestionResult] = []
    total = len(dataset.records)
    for done, record in enumerate(dataset.records, 1):
        answer, latency, error = _run_one(engine, record, mode, k)
        result = judge(record, answer, k, dataset.doc_ids)
        results.append(replace(result, latency_ms=latency, error=error))
        if progress is not None:
            progress(mode, done, total)
    summary = summarize(results, k)
    if dataset.kind == "beir":  # no answers to judge: only ranking and latency mean something
        summary.update(dict.fromkeys((*ANSWER_METRICS, "refusal_precision", "refusal_recall")))
    return ModeRun(mode, tuple(results), summary, count(results))


def evaluate(
    engine: Engine,
    dataset: Dataset,
    modes: Sequence[str],
    k: int,
    progress: Progress | None = None,
) -> EvalResult:
    """Run ``dataset`` once per mode. The model is loaded first so latency excludes loading."""
    if k < 1:
        raise EvalError("k must be at least 1")
    engine.load()
    runs = tuple(run_mode(engine, dataset, mode, k, progress) for mode in modes)
    settings = engine.settings
    return EvalResult(
        dataset.name,
        dataset.kind,
        str(settings.corpus),
        StoreLocation.of(settings).describe(settings),
        k,
        runs,
        dataset.problems,
    )
