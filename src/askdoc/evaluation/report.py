"""Evaluation reports: rich tables (never markup from data), JSON, Markdown, comparison with an
earlier JSON report, and thresholds (``--min hit@5=0.9``).

A metric that does not apply (no question it could be measured on: ``None``) is left out: a row
no mode measured is not shown, a cell of a mode that did not measure it stays empty."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from askdoc import __version__
from askdoc.errors import EvalError
from askdoc.evaluation.run import EvalResult, ModeRun, QuestionResult, metric_names
from askdoc.text import one_line

JSON_FORMAT = "askdoc-eval"
JSON_VERSION = 1
LOWER_IS_BETTER = frozenset({"latency_p50_ms", "latency_p95_ms"})
COUNTS = ("questions", "answerable", "unanswerable", "passed", "refused", "errors")
ANSWER_CHARS = 600
"""An answer in the per-question table is cut only beyond this (it wraps in its column)."""


@dataclass(frozen=True)
class Threshold:
    """``metric >= value`` (kind "min") or ``metric <= value`` (kind "max")."""

    metric: str
    value: float
    kind: str = "min"


@dataclass(frozen=True)
class Change:
    mode: str
    metric: str
    old: float | None
    new: float | None

    @property
    def delta(self) -> float | None:
        return None if self.old is None or self.new is None else self.new - self.old


def fmt(metric: str, value: float | None) -> str:
    """A metric's value as shown; "" when it does not apply."""
    if value is None:
        return ""
    return f"{value:.1f}" if metric.endswith("_ms") else f"{value:.3f}"


def fmt_delta(metric: str, delta: float | None) -> str:
    if delta is None:
        return ""
    return f"{delta:+.1f}" if metric.endswith("_ms") else f"{delta:+.3f}"


def clipped(text: str, limit: int = ANSWER_CHARS) -> str:
    """Untrusted text on one line, cut to ``limit`` characters ("…" at the end when cut)."""
    flat = one_line(text)
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def rank_text(result: QuestionResult) -> str:
    """The rank of the first gold source; ">10" when none of the 10 retrieved matched; "" for
    a question without gold sources (unanswerable: the ``*`` says so)."""
    if result.retrieval is None:
        return ""
    if result.first_rank is None:
        return f">{len(result.retrieved)}" if result.retrieved else ""
    return str(result.first_rank)


# --- thresholds ----------------------------------------------------------------------------


def parse_threshold(text: str, k: int, kind: str = "min") -> Threshold:
    """``METRIC=VALUE`` with METRIC as named in the summary; EvalError otherwise."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if name not in metric_names(k):
        known = ", ".join(metric_names(k))
        raise EvalError(f"--{kind} {text!r}: unknown metric {name!r} (known: {known})")
    try:
        value = float(raw)
    except ValueError:
        raise EvalError(f"--{kind} {text!r}: expected METRIC=NUMBER, e.g. hit@5=0.9") from None
    if not sep:
        raise EvalError(f"--{kind} {text!r}: expected METRIC=NUMBER, e.g. hit@5=0.9")
    return Threshold(name, value, kind)


def check_thresholds(result: EvalResult, thresholds: list[Threshold]) -> list[str]:
    """One message per threshold missed, per mode (an unmeasured metric misses)."""
    missed: list[str] = []
    for run in result.runs:
        for t in thresholds:
            value = run.summary.get(t.metric)
            bound = "minimum" if t.kind == "min" else "maximum"
            if value is None:
                missed.append(f"{run.mode}: {t.metric} was not measured ({bound} {t.value:g})")
            elif (value < t.value) if t.kind == "min" else (value > t.value):
                side = "below" if t.kind == "min" else "above"
                shown = fmt(t.metric, value)
                missed.append(f"{run.mode}: {t.metric} = {shown} is {side} the {bound} {t.value:g}")
    return missed


# --- JSON and comparison -------------------------------------------------------------------


def question_json(result: QuestionResult) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(result).items()}


def to_json(
    result: EvalResult, changes: list[Change] | None = None, missed: list[str] | None = None
) -> dict[str, Any]:
    """The report as a JSON-ready dict (docs/evaluation.md describes it)."""
    return {
        "format": JSON_FORMAT,
        "version": JSON_VERSION,
        "askdoc": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "dataset": result.dataset,
        "kind": result.kind,
        "corpus": result.corpus,
        "index": result.index,
        "k": result.k,
        "problems": list(result.problems),
        "runs": [
            {
                "mode": run.mode,
                "counts": run.counts,
                "summary": run.summary,
                "questions": [question_json(r) for r in run.results],
            }
            for run in result.runs
        ],
        "compare": [{**asdict(c), "delta": c.delta} for c in changes or []],
        "thresholds_missed": list(missed or []),
    }


def load_summaries(path: Path) -> dict[str, dict[str, float | None]]:
    """mode -> summary of an earlier ``--json`` report."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        runs = data["runs"] if data.get("format") == JSON_FORMAT else None
        if not isinstance(runs, list):
            raise ValueError("not an askdoc eval report")
        return {str(run["mode"]): dict(run["summary"]) for run in runs}
    except FileNotFoundError:
        raise EvalError(f"--compare {path}: no such file") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise EvalError(f"--compare {path}: not an askdoc eval JSON report ({exc})") from None


def compare(old: dict[str, dict[str, float | None]], result: EvalResult) -> list[Change]:
    """Each summary metric, old and new, for the modes of ``result``. A single old mode is
    compared with a single new mode even if their names differ."""
    changes: list[Change] = []
    for run in result.runs:
        before = old.get(run.mode)
        if before is None and len(old) == 1 and len(result.runs) == 1:
            before = next(iter(old.values()))
        for name, new in run.summary.items():
            value = (before or {}).get(name)
            if new is None:
                continue  # it does not apply (any more): nothing to compare
            changes.append(
                Change(run.mode, name, value if isinstance(value, float | int) else None, new)
            )
    return changes


# --- terminal tables -----------------------------------------------------------------------


def question_table(run: ModeRun, title: str) -> Table:
    """One row per question: verdict, rank of the first gold source, then the answer, wrapped in
    the rest of the width, with the sources it cites on its last line."""
    table = Table(
        title=Text(title),
        title_justify="left",
        caption=Text("* unanswerable: passes when askdoc refuses"),
        caption_justify="left",
    )
    table.add_column("id", no_wrap=True, max_width=16)
    table.add_column("result", no_wrap=True)
    table.add_column("rank", justify="right", no_wrap=True)
    table.add_column("answer · cited", ratio=1, overflow="fold")
    for r in run.results:
        verdict = Text("pass", style="green") if r.passed else Text("FAIL", style="bold red")
        verdict.append("*" if r.unanswerable else "")
        answer = Text(clipped(r.error or r.answer), style="" if r.found else "yellow")
        if r.cited:
            answer.append("\n↳ " + clipped(r.cited, 200), style="dim")
        table.add_row(Text(clipped(r.id, 16)), verdict, Text(rank_text(r)), answer)
    return table


def summary_table(result: EvalResult, title: str = "summary") -> Table:
    """One row per metric, one column per mode (a metric no mode measured is left out)."""
    table = Table(title=Text(title), title_justify="left")
    table.add_column("metric", no_wrap=True)
    for run in result.runs:
        table.add_column(Text(run.mode), justify="right")
    for name in COUNTS:
        table.add_row(Text(name, style="dim"), *(Text(str(r.counts[name])) for r in result.runs))
    for name in metric_names(result.k):
        values = [run.summary.get(name) for run in result.runs]
        if any(v is not None for v in values):
            table.add_row(Text(name), *(Text(fmt(name, v)) for v in values))
    return table


def change_text(c: Change) -> str:
    """``old → new (delta)``; ``new (new)`` for a metric the earlier report did not measure."""
    if c.old is None:
        return f"{fmt(c.metric, c.new)} (new)"
    return f"{fmt(c.metric, c.old)} → {fmt(c.metric, c.new)} ({fmt_delta(c.metric, c.delta)})"


def change_grid(changes: list[Change]) -> tuple[list[str], dict[str, dict[str, Change]]]:
    """(modes, metric -> mode -> change), in report order."""
    grid: dict[str, dict[str, Change]] = {}
    for c in changes:
        grid.setdefault(c.metric, {})[c.mode] = c
    return list(dict.fromkeys(c.mode for c in changes)), grid


def compare_table(changes: list[Change]) -> Table:
    """One row per metric, one column per mode: old → new (delta); green better, red worse."""
    modes, grid = change_grid(changes)
    table = Table(title=Text("compared with the earlier report"), title_justify="left")
    table.add_column("metric", no_wrap=True)
    for mode in modes:
        table.add_column(Text(mode), justify="right", no_wrap=True)
    for metric, by_mode in grid.items():
        cells = []
        for mode in modes:
            c = by_mode.get(mode)
            delta = None if c is None else c.delta
            better = delta is not None and (delta < 0 if metric in LOWER_IS_BETTER else delta > 0)
            style = "dim" if not delta else "green" if better else "red"
            cells.append(Text("" if c is None else change_text(c), style=style))
        table.add_row(Text(metric), *cells)
    return table


# --- Markdown ------------------------------------------------------------------------------

_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\|*_`[]<>#"})


def md(text: str) -> str:
    """Document text made inert in a Markdown table cell."""
    return one_line(text).translate(_MD_SPECIAL)


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def to_markdown(
    result: EvalResult,
    changes: list[Change] | None = None,
    missed: list[str] | None = None,
    questions: bool = True,
) -> str:
    """The same report as the terminal: summary, comparison, thresholds, per-question rows."""
    out = [f"# askdoc eval: {md(result.dataset)}", ""]
    out.append(f"corpus `{md(result.corpus)}`, index `{md(result.index)}`, k = {result.k}")
    out.append("")
    modes = [run.mode for run in result.runs]
    rows = [[name, *(str(r.counts[name]) for r in result.runs)] for name in COUNTS]
    for name in metric_names(result.k):
        values = [run.summary.get(name) for run in result.runs]
        if any(v is not None for v in values):
            rows.append([name, *(fmt(name, v) for v in values)])
    out += ["## Summary", "", *md_table(["metric", *modes], rows), ""]
    if changes:
        modes, grid = change_grid(changes)
        rows = [
            [metric, *(change_text(by[m]) if m in by else "" for m in modes)]
            for metric, by in grid.items()
        ]
        out += ["## Compared with the earlier report (old → new (delta))", ""]
        out += [*md_table(["metric", *modes], rows), ""]
    if missed:
        out += ["## Thresholds missed", "", *(f"- {md(m)}" for m in missed), ""]
    if result.problems:
        out += ["## Problems in the input", "", *(f"- {md(p)}" for p in result.problems), ""]
    for run in result.runs if questions else ():
        rows = [
            [
                md(r.id),
                md(clipped(r.question, 120)),
                ("pass" if r.passed else "**FAIL**") + ("\\*" if r.unanswerable else ""),
                rank_text(r),
                md(clipped(r.error or r.answer, 200)),
                md(r.cited),
            ]
            for r in run.results
        ]
        out += [f"## Questions ({run.mode})", "", "\\* unanswerable: passes when refused", ""]
        out += [*md_table(["id", "question", "result", "rank", "answer", "cited"], rows), ""]
    return "\n".join(out)


def calibration_table(calibration: Any, questions: int) -> Table:
    """The refusal trade-off around the chosen threshold (``calibrate.summary_points``)."""
    from askdoc.evaluation.calibrate import summary_points

    title = f"refusal calibration · {questions} questions"
    table = Table(title=title, title_justify="left", caption="precision, recall: of refusing")
    for name in (
        "min_confidence",
        "refused",
        "precision",
        "recall",
        "answer_contains",
    ):
        table.add_column(name, justify="right")
    for point in summary_points(calibration):
        chosen = point == calibration.chosen
        cells = [
            f"{point.threshold:.4f}",
            str(point.refused),
            _cell(point.precision),
            _cell(point.recall),
            _cell(point.answer_contains),
        ]
        table.add_row(*cells, style="bold green" if chosen else None)
    return table


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"
