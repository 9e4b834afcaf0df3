"""Measure the grounding check on eval/grounding.jsonl (hand-labelled answer sentences against
the shipped corpus): the share of unsupported sentences flagged and of supported ones passed.

    python scripts/eval_grounding.py            # the shipped settings, every miss listed
    python scripts/eval_grounding.py --grid     # the trade-off over weights and thresholds
    python scripts/eval_grounding.py --folds    # threshold fitted on one half, judged on the other
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from askdoc.embedder import Embedder  # noqa: E402
from askdoc.evaluation.grounding import (  # noqa: E402
    LABELS,
    Labelled,
    load_labelled,
    paragraph_sources,
    run,
)
from askdoc.grounding import DEFAULT_PARAMS, GroundingParams  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "eval" / "grounding.jsonl"
CORPUS = REPO / "corpus" / "north-korea-russia-alliance.txt"


def cached(embedder: Embedder):  # type: ignore[no-untyped-def]
    memo: dict[str, np.ndarray] = {}

    def embed(texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in memo]
        if missing:
            memo.update(zip(missing, embedder.encode(missing, batch_size=64), strict=True))
        return np.stack([memo[t] for t in texts])

    return embed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", action="store_true", help="scan weights and thresholds")
    parser.add_argument("--folds", action="store_true", help="two-fold check of the threshold")
    args = parser.parse_args()
    rows = load_labelled(DATA)
    sources = paragraph_sources(CORPUS, "north-korea-russia-alliance.txt")
    embedder = Embedder()
    embedder.load()
    embedder.set_threads(1)
    embed = cached(embedder)
    if args.grid:
        print("cosine_weight threshold flagged passed")
        for weight in (0.3, 0.4, 0.5, 0.6, 0.7):
            for threshold in np.arange(0.50, 0.80, 0.02):
                params = GroundingParams(weight, 1 - weight, round(float(threshold), 2))
                report = run(rows, sources, embed, params)
                print(f"{weight:.1f} {threshold:.2f} {report.flag_rate:.3f} {report.pass_rate:.3f}")
        return 0
    if args.folds:
        thresholds = [round(float(t), 2) for t in np.arange(0.50, 0.80, 0.02)]
        for fold in (0, 1):
            tune = [r for i, r in enumerate(rows) if i % 2 == fold]
            held = [r for i, r in enumerate(rows) if i % 2 != fold]

            def balance(threshold: float, part: Sequence[Labelled]) -> float:
                report = run(part, sources, embed, GroundingParams(threshold=threshold))
                return min(report.flag_rate, report.pass_rate)

            best = max(thresholds, key=lambda t: balance(t, tune))
            report = run(held, sources, embed, GroundingParams(threshold=best))
            print(
                f"fold {fold}: threshold {best:.2f} fitted on {len(tune)} sentences; on the other "
                f"{len(held)}: unsupported flagged {report.flag_rate:.1%}, supported passed "
                f"{report.pass_rate:.1%}"
            )
        return 0
    report = run(rows, sources, embed, DEFAULT_PARAMS)
    counts = report.counts()
    print(f"{len(rows)} labelled sentences: " + ", ".join(f"{counts[k]} {k}" for k in LABELS))
    for label in LABELS:
        share = report.share([label], label != "supported")
        verb = "passed" if label == "supported" else "flagged"
        print(f"  {label:15} {verb} {share:.1%}")
    print(f"unsupported flagged: {report.flag_rate:.1%}   supported passed: {report.pass_rate:.1%}")
    for origin in ("smollm2", "hand"):
        mine = [o for o in report.outcomes if o.row.origin.startswith(origin)]
        right = sum(o.right for o in mine)
        print(f"  {origin}: {right}/{len(mine)} judged right")
    for outcome in report.outcomes:
        if not outcome.right:
            c = outcome.check
            what = "flagged" if outcome.flagged else "passed"
            why = "; ".join(c.problems()) if c is not None else "not a claim"
            score = f"{c.score:.2f}" if c is not None else "-"
            print(
                f"miss {outcome.row.id} {outcome.row.label} {what} (score {score}; {why}): "
                f"{outcome.row.sentence[:90]}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
