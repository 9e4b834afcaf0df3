"""The embedded store (SQLite + FAISS) vs Milvus Lite at scale: build throughput, query latency,
disk and memory, as ratios measured in one run (issue 16, docs/scale.md).

Both stores are filled the way users fill them: ``askdoc index`` (``index.store.open_builder``)
over one generated corpus (documents of about 4,750 words: 1,600 of them make about 100k
passages), with the stub embedder (scripts/bench_stub.py: the real model's fingerprint and
tokenizer, random vectors), so the time is the store's and the reading's, not the model's. Each
build runs in a fresh process; so does each query run, which opens the store as the engine does
and times, per question, ``retrieval.search`` in each mode (dense, lexical BM25, hybrid: what a
question costs in the store, without the model) and a whole ``Engine.ask`` (hybrid, with the
answer step's sentence vectors read from the store; the stub embeds what is missing). The
stores take turns for the query runs (two rounds each), so a busy spell of the shared machine
hits both; each phase prints the load average.

Memory: peak RSS (VmHWM) of the build process and of the query process, and for Milvus Lite
also of its ``milvus`` server process (a child of the Python process: it holds the loaded
collections). Disk: every file of the index folder vs every file of the folder that holds only
the Milvus Lite database file (it writes the .db file and an empty lock file).
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_corpus import generate_documents, generate_passages, questions_for, write_corpus

DOC_WORDS = 4750
DOCS_PER_100K = 1600
"""Generated documents of DOC_WORDS words that make about 100,000 passages."""
MODES = ("dense", "lexical", "hybrid")
LITE_FILE = "askdoc-bench.db"
ROUNDS = 2
"""Query runs per store, the stores taking turns."""


# ---------------------------------------------------------------- the child's side


def server_memory() -> tuple[float, float]:
    """(RSS, peak RSS) in MB of this process's Milvus Lite server (0, 0 without one)."""
    import psutil

    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.name() != "milvus":
                continue
            status = Path(f"/proc/{proc.pid}/status").read_text().splitlines()
        except (psutil.Error, OSError):
            continue
        values = {
            line.split(":")[0]: int(line.split()[1]) / 1e3
            for line in status
            if line.startswith(("VmRSS:", "VmHWM:"))
        }
        return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)
    return 0.0, 0.0


def guard_memory(
    floor_mb: float = 3000.0, report: Callable[[str, float], None] | None = None
) -> None:
    """On a shared machine: when less than ``floor_mb`` of memory is left, kill this process's
    Milvus Lite server rather than let the kernel's OOM killer choose, then ``report`` (why,
    the server's peak RSS) and exit 0, or without ``report`` exit with status 3."""
    import psutil

    def watch() -> None:
        while psutil.virtual_memory().available > floor_mb * 1e6:
            time.sleep(0.5)
        why = f"stopped: less than {floor_mb:.0f} MB of memory left on the machine"
        print(why, file=sys.stderr, flush=True)
        server_peak = server_memory()[1]
        for proc in psutil.Process().children(recursive=True):
            proc.kill()
        if report is not None:
            report(why, server_peak)
        os._exit(0 if report is not None else 3)

    threading.Thread(target=watch, name="memory-guard", daemon=True).start()


PARTIAL: dict[str, Any] = {}
"""What ``query_store`` has measured so far (what a stopped run reports)."""


def partial_result(why: str, server_peak: float) -> dict[str, Any]:
    """The figures of a query run the memory guard stopped: the questions timed so far, NaN
    where none was (the parent prints "nan" for them)."""
    nan = float("nan")
    runs = PARTIAL.get("runs", {})
    return {
        "open_s": PARTIAL.get("open_s", nan),
        "runs": {step: runs.get(step) or [{"total": nan}] for step in (*MODES, "ask")},
        "server_rss_mb": nan,
        "server_peak_rss_mb": server_peak,
        "stopped": why,
    }


def query_store(settings: Any, questions: list[str]) -> dict[str, Any]:
    """Open the store as the engine does, then time every question in each mode of
    ``retrieval.search`` and as a hybrid ``Engine.ask`` (rotating the order: noise spreads)."""
    from bench_stub import StubEmbedder

    from askdoc.engine import Engine
    from askdoc.retrieval import FusionParams, search

    stub = StubEmbedder()
    engine = Engine(settings, embedder=stub)
    began = time.perf_counter()
    engine.load()
    store = engine.open_index()
    with store.snapshot():
        pass
    open_s = time.perf_counter() - began
    PARTIAL["open_s"] = open_s
    vectors = [stub.encode_query(q) for q in questions]
    k, params = settings.top_k, FusionParams()
    for question, vector in zip(questions[:3], vectors[:3], strict=True):  # warm-up
        for mode in MODES:
            search(store, vector, question, k, mode, params)
        engine.ask(question)
    steps = (*MODES, "ask")
    runs: dict[str, list[dict[str, float]]] = {m: [] for m in steps}
    PARTIAL["runs"] = runs
    for number, (question, vector) in enumerate(zip(questions, vectors, strict=True)):
        for step in steps[number % 4 :] + steps[: number % 4]:
            timings: dict[str, float] = {}
            began = time.perf_counter()
            if step == "ask":
                timings = dict(engine.ask(question, mode="hybrid").timings)
            else:
                search(store, vector, question, k, step, params, timings)
            timings["total"] = time.perf_counter() - began
            runs[step].append(timings)
    server_rss, server_peak = server_memory()
    engine.close()
    return {
        "open_s": open_s,
        "runs": runs,
        "server_rss_mb": server_rss,
        "server_peak_rss_mb": server_peak,
    }


# ---------------------------------------------------------------- the parent's side


def tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def tag_of(size: int) -> str:
    return f"{size // 1000}k" if size < 1_000_000 else f"{size // 1_000_000}M"


def load_average() -> str:
    return f"load average {os.getloadavg()[1]:.1f} (5 min) on {os.cpu_count()} cores"


def pooled(queries: list[dict[str, Any]]) -> dict[str, Any]:
    """The query runs of several rounds as one: every question's timings, the median time to
    open, the highest peaks."""
    runs: dict[str, list[dict[str, float]]] = {}
    for query in queries:
        for step, timed in query["runs"].items():
            runs.setdefault(step, []).extend(timed)
    opens = sorted(q["open_s"] for q in queries)
    return {
        "runs": runs,
        "open_s": opens[len(opens) // 2],
        "peak_rss_mb": max(q["peak_rss_mb"] for q in queries),
        "server_peak_rss_mb": max(q["server_peak_rss_mb"] for q in queries),
    }


def bench_stores(b: Any, size: int) -> None:
    from bench import child, median, pct

    tag = tag_of(size)
    docs_count = max(16, size * DOCS_PER_100K // 100_000)
    b.section(
        f"stores at {tag} passages: embedded (SQLite + FAISS) vs Milvus Lite, `askdoc index` with "
        "the stub embedder, queries through the store (no model)"
    )
    work = b.work / f"stores-{tag}"
    corpus = work / "corpus"
    began = time.perf_counter()
    docs = generate_documents(docs_count, DOC_WORDS, seed=21)
    write_corpus(corpus, docs)
    questions = questions_for(generate_passages(400, seed=5), 12 if b.quick else 40, seed=9)
    questions += [d.question for d in docs[:: max(1, len(docs) // 20)]][: 4 if b.quick else 20]
    qfile = work / "questions.json"
    qfile.write_text(json.dumps(questions), encoding="utf-8")
    del docs  # 16,000 documents at 1M passages: 0.5 GB this process need not hold
    seconds = time.perf_counter() - began
    print(f"  corpus: {docs_count} generated documents written in {seconds:.0f} s", flush=True)
    stores = {
        "embedded": ("", work / "index"),
        "milvus": (f"milvus-lite:{work / 'milvus' / LITE_FILE}", work / "milvus"),
    }
    out: dict[str, dict[str, Any]] = {}
    where = {
        name: ["--index", str(work / "index"), "--corpus", str(corpus), "--store", uri]
        for name, (uri, _) in stores.items()
    }
    for name, (_, folder) in stores.items():
        folder.mkdir(parents=True, exist_ok=True)
        print(f"  building the {name} store ...", flush=True)
        build = child("build", *where[name], timeout=6 * 3600)
        out[name] = {"build": build, "disk": tree_bytes(folder), "queries": []}
        print(
            f"  {name}: {build['chunks']} passages in {build['seconds']:.0f} s "
            f"(timings {', '.join(f'{k} {v:.0f} s' for k, v in build['timings'].items())}); "
            f"{load_average()}",
            flush=True,
        )
    for round_ in range(ROUNDS):  # the stores take turns: a busy spell hits both
        for name in list(stores)[:: 1 if round_ % 2 == 0 else -1]:
            query = child("stores", *where[name], "--queries", str(qfile), timeout=6 * 3600)
            out[name]["queries"].append(query)
            print(
                f"  queries, round {round_ + 1}, {name}: opened in {query['open_s']:.1f} s; "
                f"{load_average()}" + (f"; {query['stopped']}" if query.get("stopped") else ""),
                flush=True,
            )
    for name in stores:
        out[name]["query"] = pooled(out[name].pop("queries"))
    chunks = out["embedded"]["build"]["chunks"]
    if out["milvus"]["build"]["chunks"] != chunks:
        raise RuntimeError(f"the stores hold different passage counts: {out}")
    rows: list[tuple[str, str, float, float, str]] = []

    def figure(key: str, label: str, unit: str, better: str, of: Callable[[dict], float]) -> None:
        embedded, milvus = of(out["embedded"]), of(out["milvus"])
        b.add(f"stores.{tag}.embedded.{key}", f"{tag} embedded: {label}", embedded, unit, better)
        if math.isnan(milvus):  # a query run the memory guard stopped: nothing to record
            rows.append((label, unit, embedded, milvus, "-"))
            return
        b.add(
            f"stores.{tag}.milvus.{key}",
            f"{tag} Milvus Lite: {label}",
            milvus,
            unit,
            better,
            f"= {milvus / embedded:.2f} x embedded",
        )
        rows.append((label, unit, embedded, milvus, f"{milvus / embedded:.2f}"))

    figure(
        "build_per_s", "build throughput", "/s", "higher", lambda s: chunks / s["build"]["seconds"]
    )
    for step in (*MODES, "ask"):
        label = f"{step} p50" if step != "ask" else "whole ask (hybrid) p50"

        def ms(s: dict, q: float, step: str = step) -> float:
            return pct([r["total"] * 1000 for r in s["query"]["runs"][step]], q)

        figure(f"{step}.p50_ms", label, "ms", "lower", lambda s, ms=ms: ms(s, 50))
        figure(f"{step}.p95_ms", label.replace("p50", "p95"), "ms", "", lambda s, ms=ms: ms(s, 95))
    figure("open_s", "open the store", "s", "", lambda s: s["query"]["open_s"])
    figure("disk_mb", "disk", "MB", "lower", lambda s: s["disk"] / 1e6)
    figure(
        "build_peak_mb",
        "build peak RSS (+ Milvus server)",
        "MB",
        "lower",
        lambda s: s["build"]["peak_rss_mb"] + s["build"]["server_peak_rss_mb"],
    )
    figure(
        "query_peak_mb",
        "query process peak RSS (+ Milvus server)",
        "MB",
        "lower",
        lambda s: s["query"]["peak_rss_mb"] + s["query"]["server_peak_rss_mb"],
    )
    for name in ("build", "query"):
        server = out["milvus"][name]["server_peak_rss_mb"]
        print(
            f"  Milvus Lite {name}: Python process {out['milvus'][name]['peak_rss_mb']:.0f} MB "
            f"+ milvus server {server:.0f} MB (peaks)"
        )
    for name in stores:
        runs = out[name]["query"]["runs"]["hybrid"]
        parts = "  ".join(
            f"{part} {median([r.get(part, 0.0) * 1000 for r in runs]):.1f}"
            for part in ("dense", "lexical", "fusion")
        )
        print(f"  {name} hybrid search, p50 of each part (ms): {parts}")
    print_table(tag, chunks, rows)


def print_table(tag: str, chunks: int, rows: list[tuple[str, str, float, float, str]]) -> None:
    """The section as one markdown table (docs/scale.md pastes it)."""
    print(f"\n  | {chunks:,} passages ({tag}) | embedded | Milvus Lite | Milvus / embedded |")
    print("  |---|---:|---:|---:|")
    for label, unit, embedded, milvus, ratio in rows:
        shown = [f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}" for v in (embedded, milvus)]
        print(f"  | {label} ({unit}) | {shown[0]} | {shown[1]} | {ratio} |")
