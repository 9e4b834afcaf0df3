"""Fit the refusal settings to a user's own Q&A file: the evidence weights and the threshold.

``askdoc eval FILE --calibrate`` runs every question, keeps each answer's evidence
(``refusal.Evidence``), fits the weights when the file has enough questions of both kinds, then
chooses the threshold with the best refusal recall at refusal precision >= 0.9 that keeps
answer-contains within 0.02 of never refusing. Nothing here prints; ``evaluation.cli`` shows the
table and writes the settings into askdoc.toml.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from askdoc.errors import ConfigError
from askdoc.refusal import FEATURES, Evidence, RefusalModel, fit

MIN_EACH_TO_FIT = 10
"""Fit the weights only with at least this many answerable and unanswerable questions; else
keep the shipped weights and choose the threshold alone."""
TARGET_PRECISION = 0.9
MAX_ANSWER_LOSS = 0.02


@dataclass(frozen=True)
class Sample:
    """One question's evidence, and what is true of it."""

    evidence: tuple[float, ...]
    answerable: bool
    correct: bool
    """Answerable, and the (unrefused) answer contains an expected phrase."""


@dataclass(frozen=True)
class Point:
    """The outcome of one threshold on the samples."""

    threshold: float
    precision: float | None
    recall: float | None
    answer_contains: float | None
    refused: int


@dataclass(frozen=True)
class Calibration:
    model: RefusalModel
    fitted: bool
    """The weights were fitted to these questions (else the shipped weights were kept)."""
    threshold: float
    chosen: Point
    curve: tuple[Point, ...]
    met_target: bool


def outcome(model: RefusalModel, samples: Sequence[Sample], threshold: float) -> Point:
    refused = [model.probability(Evidence(*s.evidence)) < threshold for s in samples]
    true_refusals = sum(r and not s.answerable for r, s in zip(refused, samples, strict=True))
    unanswerable = sum(not s.answerable for s in samples)
    answerable = [(r, s) for r, s in zip(refused, samples, strict=True) if s.answerable]
    n_refused = sum(refused)
    return Point(
        threshold,
        true_refusals / n_refused if n_refused else None,
        true_refusals / unanswerable if unanswerable else None,
        sum(s.correct and not r for r, s in answerable) / len(answerable) if answerable else None,
        n_refused,
    )


def calibrate(
    samples: Sequence[Sample], model: RefusalModel, reference: float | None = None
) -> Calibration:
    """Fit (when there is enough of both kinds) and choose the threshold: the best refusal
    recall at precision >= 0.9 keeping answer-contains within 0.02 of ``reference`` (default:
    answer-contains when never refusing)."""
    answerable = sum(s.answerable for s in samples)
    fitted = min(answerable, len(samples) - answerable) >= MIN_EACH_TO_FIT
    if fitted:
        model = fit([s.evidence for s in samples], [s.answerable for s in samples])
    probabilities = sorted({round(model.probability(Evidence(*s.evidence)), 4) for s in samples})
    candidates = sorted({0.0, *[p + 1e-4 for p in probabilities]})
    curve = [outcome(model, samples, t) for t in candidates]
    best_contains = max((p.answer_contains or 0.0) for p in curve)
    if reference is not None:
        best_contains = reference
    allowed = [
        p
        for p in curve
        if p.precision is not None
        and p.precision >= TARGET_PRECISION
        and (p.answer_contains or 0.0) >= best_contains - MAX_ANSWER_LOSS
    ]
    met = bool(allowed)
    if allowed:
        chosen = max(allowed, key=lambda p: ((p.recall or 0.0), -p.threshold))
    else:  # the target cannot be met: best balance of refusal F1 and kept answers
        chosen = max(curve, key=lambda p: (_f1(p), p.answer_contains or 0.0))
    return Calibration(model, fitted, chosen.threshold, chosen, tuple(curve), met)


def _f1(point: Point) -> float:
    p, r = point.precision or 0.0, point.recall or 0.0
    return 2 * p * r / (p + r) if p + r else 0.0


def summary_points(calibration: Calibration, rows: int = 9) -> list[Point]:
    """A few points of the curve around the chosen threshold, for a table."""
    curve = list(calibration.curve)
    at = curve.index(calibration.chosen)
    step = max(1, len(curve) // (rows * 2))
    picks = {0, len(curve) - 1, at}
    for i in range(1, rows):
        picks.update({at - i * step, at + i * step})
    return [curve[i] for i in sorted(p for p in picks if 0 <= p < len(curve))]


_KEYS = ("min_confidence", "refusal_weights")
_TABLE = re.compile(r"^\s*\[([^\]]+)\]\s*(#.*)?$")


def write_settings(path: Path, calibration: Calibration) -> None:
    """Set min_confidence (and the fitted weights) in askdoc.toml, keeping everything else."""
    lines = [f"min_confidence = {calibration.threshold:.4f}"]
    if calibration.fitted:
        model = calibration.model
        weights = ", ".join(f"{w:g}" for w in (*model.weights, model.bias))
        lines.append(f"refusal_weights = [{weights}]  # {', '.join(FEATURES)}, bias")
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    kept = [
        line
        for line in old.splitlines()
        if not any(re.match(rf"^\s*{key}\s*=", line) for key in _KEYS)
    ]
    tables = [i for i, line in enumerate(kept) if _TABLE.match(line)]
    askdoc = [i for i in tables if _TABLE.match(kept[i])[1].strip() == "askdoc"]  # type: ignore[index]
    note = "# refusal settings written by `askdoc eval --calibrate`"
    if askdoc:
        at = askdoc[0] + 1
        kept[at:at] = [note, *lines]
    elif tables:  # other tables but no [askdoc]: ours go in a table of their own
        kept = [*kept, "", "[askdoc]", note, *lines]
    else:
        kept = [note, *lines, *kept]
    text = "\n".join(kept).strip("\n") + "\n"
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: cannot add the refusal settings ({exc})") from None
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
