"""Fit the refusal model on Q&A sets and report refusal precision/recall and answer-contains.

Every question is answered with refusal switched off (min_confidence 0) so each answer's
evidence and correctness are known; the logistic model (``refusal.fit``) is fitted on the
``--fit`` sets and the threshold chosen there (``calibrate.calibrate``); then every ``--report``
set is scored with that model and threshold. This is how the shipped weights were chosen
(docs/evaluation.md): fitted on eval/atlas-tune only.

Usage: python scripts/tune_refusal.py --fit SET.jsonl:CORPUS ... --report SET.jsonl:CORPUS ...
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def samples(spec: str) -> list:
    from askdoc.config import load_settings
    from askdoc.engine import Engine
    from askdoc.evaluation.calibrate import Sample
    from askdoc.evaluation.data import corpus_cache, load_qa
    from askdoc.evaluation.run import run_mode
    from askdoc.refusal import FEATURES

    qa, _, corpus = spec.partition(":")
    settings = load_settings(corpus=Path(corpus), min_confidence=0.0)
    settings = replace(settings, index=corpus_cache(Path(".cache/askdoc-eval"), Path(corpus)))
    engine = Engine(settings)
    engine.build()
    engine.load()
    run = run_mode(engine, load_qa(Path(qa)), settings.mode, 10)
    engine.close()
    return [
        Sample(
            tuple(r.evidence.get(f, 0.0) for f in FEATURES),
            not r.unanswerable,
            bool(r.answer_contains),
        )
        for r in run.results
        if r.evidence
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--fit", nargs="+", default=[], help="QA.jsonl:CORPUS to fit on")
    parser.add_argument("--report", nargs="*", default=[], help="QA.jsonl:CORPUS to report")
    parser.add_argument(
        "--reference",
        type=float,
        help="answer-contains to stay within 0.02 of (default: never refusing)",
    )
    args = parser.parse_args(argv)
    os.chdir(REPO)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(name, "1")
    from askdoc.evaluation.calibrate import calibrate, outcome
    from askdoc.refusal import FEATURES, RefusalModel

    model = RefusalModel()
    threshold = 0.5
    if args.fit:
        rows = [s for spec in args.fit for s in samples(spec)]
        result = calibrate(rows, model, args.reference)
        model, threshold = result.model, result.threshold
        print(f"fitted on {len(rows)} questions: weights {model.weights} bias {model.bias}")
        print(f"(features {', '.join(FEATURES)})")
        print(f"threshold {threshold:.4f} (target met: {result.met_target})")
    print(
        "| set | refusal precision | refusal recall | answer_contains "
        "| answer_contains, never refusing |"
    )
    print("|---|---|---|---|---|")
    for spec in args.fit + args.report:
        rows = samples(spec)
        point = outcome(model, rows, threshold)
        never = outcome(model, rows, 0.0)
        fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
        print(
            f"| {Path(spec.partition(':')[0]).name} | {fmt(point.precision)} | "
            f"{fmt(point.recall)} | {fmt(point.answer_contains)} | {fmt(never.answer_contains)} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
