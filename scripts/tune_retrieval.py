"""Compare fusion settings on Q&A sets: MRR@10 and hit@1 of dense, lexical and hybrid variants.

Each question is embedded once; every variant then runs askdoc's own ``retrieval.search`` on the
same index, so the table isolates the fusion. This is how the defaults in ``FusionParams`` were
chosen (docs/evaluation.md): on the tuning half only, then reported on the held-back half.

Usage: python scripts/tune_retrieval.py SET.jsonl:CORPUS [SET.jsonl:CORPUS ...] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

VARIANTS: dict[str, tuple[str, dict[str, float | str]]] = {
    "dense": ("dense", {}),
    "lexical": ("lexical", {}),
    "rrf k60 w1.0 (old default)": ("hybrid", {"method": "rrf", "k": 60, "lexical_weight": 1.0}),
    "rrf k60 w0.5": ("hybrid", {"method": "rrf", "k": 60, "lexical_weight": 0.5}),
    "rrf k10 w0.3": ("hybrid", {"method": "rrf", "k": 10, "lexical_weight": 0.3}),
    "score a0.05": ("hybrid", {"method": "score", "lexical_alpha": 0.05}),
    "score a0.1": ("hybrid", {"method": "score", "lexical_alpha": 0.1}),
    "score a0.15": ("hybrid", {"method": "score", "lexical_alpha": 0.15}),
    "score a0.2": ("hybrid", {"method": "score", "lexical_alpha": 0.2}),
    "score a0.3": ("hybrid", {"method": "score", "lexical_alpha": 0.3}),
    "score a0.4": ("hybrid", {"method": "score", "lexical_alpha": 0.4}),
    "score a0.5": ("hybrid", {"method": "score", "lexical_alpha": 0.5}),
    "score a0.7": ("hybrid", {"method": "score", "lexical_alpha": 0.7}),
    "score a1.0": ("hybrid", {"method": "score", "lexical_alpha": 1.0}),
}


def run_set(qa: Path, corpus: Path) -> dict[str, dict[str, float]]:
    from askdoc.answer import make_sources
    from askdoc.config import load_settings
    from askdoc.engine import Engine, prepare_question
    from askdoc.evaluation import metrics
    from askdoc.evaluation.data import corpus_cache, load_qa
    from askdoc.retrieval import FusionParams, search

    settings = load_settings(corpus=corpus)
    settings = replace(settings, index=corpus_cache(Path(".cache/askdoc-eval"), corpus))
    dataset = load_qa(qa)
    engine = Engine(settings)
    engine.build()
    engine.load()
    reader = engine.open_index()
    records = [r for r in dataset.records if r.sources and not r.unanswerable]
    vectors = {}
    for record in records:
        text, _ = prepare_question(record.question, settings.max_question_chars)
        vectors[record.id] = (text, engine.embedder.encode_query(text))
    table: dict[str, dict[str, float]] = {}
    for name, (mode, values) in VARIANTS.items():
        params = replace(FusionParams(), **values)  # type: ignore[arg-type]
        rr, h1 = [], []
        for record in records:
            text, vector = vectors[record.id]
            hits = search(reader, vector, text, 10, mode, params)
            sources = make_sources(hits, {})
            matches = [
                frozenset(i for i, g in enumerate(record.sources) if g.matches(s)) for s in sources
            ]
            rr.append(metrics.reciprocal_rank(matches, 10))
            h1.append(metrics.hit_at(matches, 1))
        table[name] = {"mrr@10": sum(rr) / len(rr), "hit@1": sum(h1) / len(h1), "n": len(rr)}
    engine.close()
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("sets", nargs="+", help="QA.jsonl:CORPUS_DIR")
    parser.add_argument("--json", type=Path, help="write the table here")
    args = parser.parse_args(argv)
    os.chdir(REPO)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(name, "1")
    results = {}
    for spec in args.sets:
        qa, _, corpus = spec.partition(":")
        results[qa] = run_set(Path(qa), Path(corpus))
    names = list(VARIANTS)
    header = f"| variant | {' | '.join(Path(q).stem for q in results)} |"
    print(header)
    print("|---" * (len(results) + 1) + "|")
    for name in names:
        cells = [
            f"{results[q][name]['mrr@10']:.3f} / {results[q][name]['hit@1']:.3f}" for q in results
        ]
        print(f"| {name} | {' | '.join(cells)} |")
    print("(MRR@10 / hit@1; answerable questions with sources)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
