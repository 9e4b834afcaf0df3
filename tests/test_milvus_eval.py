"""Every shipped evaluation set, with the real model, on the embedded store and on Milvus Lite:
each metric within 0.01 (issue 16). Each passage is embedded once: the Milvus build takes the
real model's vectors the embedded build computed (the stores are the point, not the model)."""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from askdoc.config import Settings
from askdoc.embedder import Embedder
from askdoc.engine import Engine
from askdoc.evaluation.data import load_qa
from askdoc.evaluation.run import evaluate

pytest.importorskip("pymilvus")
pytestmark = [pytest.mark.model, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
SETS = (
    ("sample", "corpus"),
    ("atlas-tune", "eval/atlas-corpus"),
    ("atlas-heldout", "eval/atlas-corpus"),
    ("pydoc-users", "eval/pydoc-corpus"),
    ("pydoc", "eval/pydoc-corpus"),
)
TOLERANCE = 0.01


def pydoc_corpus(out: Path) -> Path:
    spec = importlib.util.spec_from_file_location(
        "make_pydoc_corpus", REPO / "scripts" / "make_pydoc_corpus.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write_corpus(out)
    return out


def remember_vectors(embedder: Embedder) -> Callable[[], None]:
    """Make ``embedder.encode_packed`` compute each passage once (by its hash); the undo."""
    real = embedder.encode_packed
    known: dict[str, tuple[np.ndarray, bytes]] = {}

    def encode_packed(
        passages: Sequence[tuple[str, str, int]], batch_size: int, progress: Any = None
    ) -> tuple[np.ndarray, list[bytes]]:
        missing = [p for p in passages if _key(p) not in known]
        if missing:
            vectors, blobs = real(missing, batch_size, None)
            for passage, vector, blob in zip(missing, vectors, blobs, strict=True):
                known[_key(passage)] = (vector, blob)
        if progress is not None:
            progress(len(passages))
        found = [known[_key(p)] for p in passages]
        return np.stack([v for v, _ in found]), [b for _, b in found]

    embedder.encode_packed = encode_packed  # type: ignore[method-assign]
    return lambda: vars(embedder).pop("encode_packed", None)


def _key(passage: tuple[str, str, int]) -> str:
    return hashlib.sha256(f"{passage[2]}\n{passage[1]}".encode()).hexdigest()


def test_every_shipped_set_gives_the_same_results_on_milvus(
    tmp_path: Path, real_embedder: Embedder
) -> None:
    undo = remember_vectors(real_embedder)
    corpora = {"eval/pydoc-corpus": pydoc_corpus(tmp_path / "pydoc-corpus")}
    apart: list[str] = []
    try:
        for name, corpus_name in SETS:
            corpus = corpora.get(corpus_name, REPO / corpus_name)
            dataset = load_qa(REPO / "eval" / f"{name}.jsonl")
            base = replace(Settings(), corpus=corpus, index=tmp_path / corpus.name / "index")
            milvus = replace(base, store=f"milvus-lite:{tmp_path / 'eval.db'}")
            milvus = replace(milvus, milvus_collection=corpus.name.replace("-", "_"))
            summaries = []
            for settings in (base, milvus):
                engine = Engine(settings, real_embedder)
                try:
                    engine.build()
                    run = evaluate(engine, dataset, ["hybrid"], 5).runs[0]
                finally:
                    engine.close()
                summaries.append(run.summary)
            ours, theirs = summaries
            for metric, value in ours.items():
                other = theirs.get(metric)
                if value is None or other is None or "latency" in metric:
                    assert (value is None) == (other is None), (name, metric)
                    continue
                if abs(value - other) > TOLERANCE:
                    apart.append(f"{name} {metric}: embedded {value:.3f}, Milvus {other:.3f}")
    finally:
        undo()
    assert not apart, apart
