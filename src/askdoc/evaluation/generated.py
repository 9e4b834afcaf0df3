"""``askdoc eval --generate``: the quoted answer against the language model's checked answer on
a Q&A file: answers found, citations, refusals, the share of generated sentences the check marks
unsupported, and the model's speed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table
from rich.text import Text

from askdoc.engine import Engine
from askdoc.errors import QuestionError
from askdoc.evaluation import metrics
from askdoc.evaluation.data import Dataset, Progress, QARecord
from askdoc.evaluation.run import DEPTH, judge
from askdoc.generate import GeneratedAnswer, generate_with
from askdoc.types import Answer


@dataclass(frozen=True)
class GeneratedResult:
    """How one question went, quoted and generated."""

    id: str
    unanswerable: bool
    quoted_found: bool
    quoted_contains: bool | None
    quoted_cited: bool | None
    refused: bool
    contains: bool | None
    cited: bool | None
    """A [n] marker of the generated answer names a gold passage (None: answerable and no
    marker, or not judged)."""
    quoted_support: bool | None
    """The check's supporting quote of the first supported sentence is in a gold passage."""
    claims: int
    unsupported: int
    answered_anyway: bool
    first_token_s: float
    tokens_per_s: float
    seconds: float
    text: str
    error: str = ""


def judge_generated(record: QARecord, answer: Answer, generated: GeneratedAnswer) -> dict[str, Any]:
    answerable = not record.unanswerable
    by_number = {s.number: s for s in answer.sources}
    text = "" if generated.refused else generated.text
    contains = None
    if answerable and record.answers:
        contains = metrics.contains_any(text, record.answers) if generated.ok else False
    cited = quoted = None
    if answerable and record.sources:
        marked = [by_number[n] for c in generated.claims for n in c.cited if n in by_number]
        cited = any(g.matches(s) for s in marked for g in record.sources)
        supports = [c.support for c in generated.claims if c.ok and c.support is not None]
        quoted = bool(supports) and any(
            g.matches(by_number[supports[0].source]) for g in record.sources
        )
    return {"contains": contains, "cited": cited, "quoted_support": quoted}


def run_generated(
    engine: Engine, dataset: Dataset, k: int, progress: Progress | None = None
) -> list[GeneratedResult]:
    """Ask every question (hybrid, the configured mode) and the model, one after the other."""
    engine.load()
    results = []
    total = len(dataset.records)
    for done, record in enumerate(dataset.records, 1):
        try:
            answer = engine.ask(record.question, k=max(DEPTH, k))
        except QuestionError as exc:
            answer = Answer(record.question, record.question, False, 0.0, message=str(exc))
        quoted = judge(record, answer, k, dataset.doc_ids)
        shown = Answer(
            answer.question,
            answer.searched,
            answer.found,
            answer.confidence,
            answer.sentences,
            answer.sources[:k],
            answer.message,
        )
        generated = generate_with(engine, shown)
        verdict = judge_generated(record, shown, generated)
        results.append(
            GeneratedResult(
                record.id,
                record.unanswerable,
                answer.found,
                quoted.answer_contains,
                quoted.citation_correct,
                generated.refused,
                verdict["contains"],
                verdict["cited"],
                verdict["quoted_support"],
                len(generated.claims),
                generated.unsupported,
                generated.answered_anyway,
                generated.first_token_s,
                generated.tokens_per_s,
                generated.seconds,
                generated.text,
                generated.error,
            )
        )
        if progress is not None:
            progress("generate", done, total)
    return results


def summarize_generated(results: Sequence[GeneratedResult]) -> dict[str, dict[str, float | None]]:
    """Metric name -> {"quoted": value, "generated": value} (None where it does not apply)."""
    answerable = [r for r in results if not r.unanswerable]
    unanswerable = [r for r in results if r.unanswerable]
    ok = [r for r in results if not r.error]
    claims = sum(r.claims for r in ok)
    return {
        "answer_contains": {
            "quoted": metrics.mean(r.quoted_contains for r in answerable),
            "generated": metrics.mean(r.contains for r in answerable),
        },
        "citation_accuracy": {
            "quoted": metrics.mean(r.quoted_cited for r in answerable),
            "generated": metrics.mean(r.cited for r in answerable),
        },
        "supporting_quote_accuracy": {
            "quoted": None,
            "generated": metrics.mean(r.quoted_support for r in answerable),
        },
        "refusal_recall": {
            "quoted": metrics.mean(not r.quoted_found for r in unanswerable),
            "generated": metrics.mean(r.refused for r in unanswerable),
        },
        "answered_when_quoted_refused": {
            "quoted": None,
            "generated": metrics.mean(r.answered_anyway for r in results if not r.quoted_found),
        },
        "sentences_unsupported": {
            "quoted": 0.0,
            "generated": sum(r.unsupported for r in ok) / claims if claims else None,
        },
        "first_token_p50_s": {
            "quoted": None,
            "generated": metrics.percentile([r.first_token_s for r in ok], 50),
        },
        "tokens_per_s_p50": {
            "quoted": None,
            "generated": metrics.percentile([r.tokens_per_s for r in ok if r.tokens_per_s], 50),
        },
        "answer_seconds_p50": {
            "quoted": None,
            "generated": metrics.percentile([r.seconds for r in ok], 50),
        },
        "errors": {"quoted": None, "generated": float(len(results) - len(ok))},
    }


def generated_table(summary: dict[str, dict[str, float | None]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("quoted", justify="right")
    table.add_column("generated", justify="right")
    for name, values in summary.items():
        table.add_row(
            Text(name), *(Text(_cell(values.get(side))) for side in ("quoted", "generated"))
        )
    return table


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def to_json(results: Sequence[GeneratedResult]) -> dict[str, Any]:
    return {
        "summary": summarize_generated(results),
        "questions": [
            {
                "id": r.id,
                "unanswerable": r.unanswerable,
                "quoted_found": r.quoted_found,
                "refused": r.refused,
                "contains": r.contains,
                "cited": r.cited,
                "claims": r.claims,
                "unsupported": r.unsupported,
                "first_token_s": round(r.first_token_s, 3),
                "tokens_per_s": round(r.tokens_per_s, 2),
                "text": r.text,
                "error": r.error,
            }
            for r in results
        ],
    }
