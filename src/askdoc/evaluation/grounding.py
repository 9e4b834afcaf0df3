"""Measure the grounding check on hand-labelled answer sentences (eval/grounding.jsonl): how many
of the unsupported ones it flags and how many of the supported ones it lets pass."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from askdoc.errors import EvalError
from askdoc.grounding import DEFAULT_PARAMS, EmbedFn, GroundingParams, SentenceCheck, check
from askdoc.text import clean_text
from askdoc.types import Source

LABELS = ("supported", "unsupported", "wrong_number", "wrong_citation")
"""``supported`` sentences should pass; the other three kinds should be flagged."""


@dataclass(frozen=True)
class Labelled:
    id: str
    sentence: str
    label: str
    origin: str
    note: str = ""


@dataclass(frozen=True)
class Outcome:
    row: Labelled
    check: SentenceCheck | None
    """None when the sentence was not seen as a claim at all."""

    @property
    def flagged(self) -> bool:
        return self.check is not None and not self.check.ok

    @property
    def right(self) -> bool:
        return self.flagged == (self.row.label != "supported")


@dataclass(frozen=True)
class GroundingReport:
    outcomes: tuple[Outcome, ...]

    def share(self, labels: Sequence[str], flagged: bool) -> float:
        rows = [o for o in self.outcomes if o.row.label in labels]
        return sum(o.flagged == flagged for o in rows) / len(rows) if rows else 0.0

    @property
    def flag_rate(self) -> float:
        """Share of the unsupported, wrong-number and wrong-citation sentences flagged."""
        return self.share(LABELS[1:], True)

    @property
    def pass_rate(self) -> float:
        """Share of the supported sentences passed."""
        return self.share(LABELS[:1], False)

    def counts(self) -> Counter[str]:
        return Counter(o.row.label for o in self.outcomes)


def load_labelled(path: Path) -> list[Labelled]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EvalError(f"cannot read {path}: {exc.strerror}") from None
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            row = Labelled(
                str(data["id"]),
                str(data["sentence"]),
                str(data["label"]),
                str(data.get("origin", "")),
                str(data.get("note", "")),
            )
        except (ValueError, KeyError, TypeError):
            raise EvalError(f"{path}:{number}: not a labelled sentence") from None
        if row.label not in LABELS:
            raise EvalError(f"{path}:{number}: label must be one of {', '.join(LABELS)}")
        rows.append(row)
    return rows


def paragraph_sources(path: Path, name: str) -> list[Source]:
    """One source per non-empty line of a text file: source [n] is line n (as the shipped
    corpus file has one paragraph a line), with its exact span."""
    text = clean_text(path.read_text(encoding="utf-8"))
    sources: list[Source] = []
    start = 0
    for number, line in enumerate(text.split("\n"), 1):
        if line.strip():
            sources.append(
                Source(number, name, line, start, start + len(line), number, number, None, "", 0.0)
            )
        start += len(line) + 1
    if [s.number for s in sources] != list(range(1, len(sources) + 1)):
        raise EvalError(f"{path}: expected one paragraph per line, without blank lines")
    return sources


def run(
    rows: Sequence[Labelled],
    sources: Sequence[Source],
    embed: EmbedFn,
    params: GroundingParams = DEFAULT_PARAMS,
) -> GroundingReport:
    """Check each labelled sentence on its own against ``sources``."""
    outcomes = []
    for row in rows:
        checks = [c for c in check(row.sentence, sources, embed, (), params) if c.claim]
        worst = next((c for c in checks if not c.ok), checks[0] if checks else None)
        outcomes.append(Outcome(row, worst))
    return GroundingReport(tuple(outcomes))
