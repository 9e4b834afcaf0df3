"""The everyday-use ratios of issue 15, measured in one run against the cost of importing
sentence-transformers (or of a torch encode) on the same machine at the same time.

    cold ask     a fresh `askdoc ask --json` / `python -c "import sentence_transformers"`  <= 0.1
    TUI answer   a fresh `askdoc` to its first answer / the same import                     <= 0.2
    add one doc  `askdoc index` after adding one small document / the same import          <= 0.25
    warm hybrid  a loaded engine's hybrid question, answer included / a torch
                 sentence-transformers encode of the question alone                         <= 0.6

plus the size of the index in bytes per passage. Everything runs in fresh processes over a
generated corpus indexed with the real model into a temporary folder, with a temporary model
cache (the ONNX export is made, and timed, first).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench_corpus import generate_documents, write_corpus

TARGETS = {"cold_ask": 0.1, "tui_answer": 0.2, "add_one": 0.25, "warm_hybrid": 0.6}


def timed_run(cmd: Sequence[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - began


def child_result(cmd: Sequence[str], env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    """(wall seconds from launch to exit, the RESULT line) of a scripts/bench_child.py run."""
    began = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=600)
    seconds = time.perf_counter() - began
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("RESULT "):
            return seconds, json.loads(line[7:])
    raise RuntimeError(f"{cmd[2]} failed:\n{done.stderr[-3000:]}")


def index_bytes(index: Path) -> dict[str, int]:
    """Bytes on disk: each SQLite table and index (dbstat), the FAISS file, the whole folder."""
    out: dict[str, int] = {}
    conn = sqlite3.connect(f"file:{index / 'askdoc.sqlite3'}?mode=ro", uri=True)
    try:
        for name, size in conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
            out[f"sqlite:{name}"] = int(size)
    finally:
        conn.close()
    out["faiss"] = sum(p.stat().st_size for p in index.glob("*.faiss"))
    out["total"] = sum(p.stat().st_size for p in index.rglob("*") if p.is_file())
    return out


def bench_ratios(b: Any) -> None:
    from bench import median, pct

    b.section("everyday use (issue 15): ratios to importing sentence-transformers, one run")
    work = b.work / "ratios"
    corpus, index, cache = work / "corpus", work / "index", work / "model-cache"
    docs = generate_documents(120 if b.quick else 1000, 110, seed=41)
    write_corpus(corpus, docs)
    env = {**os.environ, "ASKDOC_MODEL_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    py, askdoc = sys.executable, str(Path(sys.executable).parent / "askdoc")
    child = [py, str(Path(__file__).resolve().parent / "bench_child.py")]
    where = ["--index", str(index), "--corpus", str(corpus)]

    export_s, _ = child_result([*child, "export"], env)
    b.add("ratios.export_s", "export the model to ONNX (once; torch)", export_s, "s", "")
    build_s = timed_run([askdoc, "index", *where], env)
    conn = sqlite3.connect(index / "askdoc.sqlite3")
    passages = int(conn.execute("SELECT count(*) FROM chunks").fetchone()[0])
    conn.close()
    b.add(
        "ratios.index_s",
        f"askdoc index, {len(docs)} documents ({passages} passages)",
        build_s,
        "s",
        "",
    )

    # fresh processes, interleaved so a busy moment hits both sides alike
    question = docs[7].question
    runs: dict[str, list[float]] = {"import": [], "ask": [], "tui": [], "add": []}
    tui_heavy: set[str] = set()
    for rep in range(b.reps(5)):
        runs["import"].append(timed_run([py, "-c", "import sentence_transformers"], env))
        runs["ask"].append(timed_run([askdoc, "ask", "--json", *where, question], env))
        seconds, result = child_result(
            [*child, "first_answer", *where, "--question", question], env
        )
        if not result["answered"]:
            raise RuntimeError("the TUI gave no answer")
        tui_heavy.update(result["heavy"])
        runs["tui"].append(seconds)
        if rep < b.reps(3):
            new = generate_documents(1, 220, seed=5000 + rep)[0]
            (corpus / f"added-{rep}.md").write_text(new.text, encoding="utf-8")
            runs["add"].append(timed_run([askdoc, "index", *where], env))
    st = median(runs["import"])
    b.add("ratios.import_st_s", 'python -c "import sentence_transformers" (baseline)', st, "s", "")
    for key, label, values in (
        ("cold_ask", "fresh askdoc ask --json", runs["ask"]),
        ("tui_answer", "fresh askdoc (TUI) to its first answer", runs["tui"]),
        ("add_one", "askdoc index after adding one document", runs["add"]),
    ):
        value = median(values)
        b.add(
            f"ratios.{key}_s", label, value, "s", "", f"range {min(values):.2f}-{max(values):.2f}"
        )
        b.add(
            f"ratios.{key}",
            "  ... / import sentence_transformers",
            value / st,
            "x",
            "lower",
            f"target <= {TARGETS[key]}",
        )
    print(f"  TUI: heavy modules imported before the first answer: {sorted(tui_heavy) or 'none'}")

    # warm: the loaded engine's hybrid question vs a torch encode of the question alone, one
    # after the other in one process
    qfile = work / "questions.json"
    qfile.write_text(json.dumps([d.question for d in docs[: 12 if b.quick else 60]]))
    _, warm = child_result([*child, "warm", *where, "--queries", str(qfile)], env)
    hybrid, encode = median(warm["total"]) * 1000, median(warm["encode"]) * 1000
    parts = "  ".join(f"{k} {median(warm[k]) * 1000:.1f}" for k in ("embed", "search", "answer"))
    b.add(
        "ratios.st_encode_ms", "torch sentence-transformers encode of a question", encode, "ms", ""
    )
    b.add(
        "ratios.warm_hybrid_ms",
        "warm hybrid question, answer included: p50",
        hybrid,
        "ms",
        "",
        f"p95 {pct([t * 1000 for t in warm['total']], 95):.0f} | {parts}",
    )
    b.add(
        "ratios.warm_hybrid",
        "  ... / the torch encode alone",
        hybrid / encode,
        "x",
        "lower",
        f"target <= {TARGETS['warm_hybrid']}",
    )

    sizes = index_bytes(index)
    b.add(
        "ratios.bytes_per_passage",
        f"index size per passage ({sizes['total'] / 1e6:.1f} MB, {passages} passages)",
        sizes["total"] / passages,
        "B",
        "lower",
    )
    biggest = sorted(((v, k) for k, v in sizes.items() if k.startswith("sqlite:")), reverse=True)
    shown = ", ".join(f"{k[7:]} {v / passages:,.0f}" for v, k in biggest[:6])
    print(f"  per passage: faiss {sizes['faiss'] / passages:,.0f} B; sqlite {shown}")
