"""Work that scripts/bench.py runs in a fresh process (clean timings, clean RSS, killable).

Each command prints progress lines and ends with one line ``RESULT <json>``.

    paint     --index DIR --corpus DIR          TUI: time to the first mounted screen
    first_answer --index DIR --corpus DIR --question Q   TUI: launch to the first answer
    warm      --index DIR --corpus DIR --queries FILE   loaded engine's hybrid questions and a
              torch sentence-transformers encode of each, interleaved, 1 thread
    export                                      make the model's ONNX export ($ASKDOC_MODEL_CACHE)
    latency   --index DIR --corpus DIR --queries FILE   warm query latency, one thread
    build     --index DIR --corpus DIR [--store URI] [--delay S] [--chunk-tokens N]   askdoc
              index with the stub embedder (prints "embed <done> <total>" as it goes)
    stores    --index DIR --corpus DIR --store URI --queries FILE   each question through the
              store in each search mode and as a whole ask (scripts/bench_stores.py)
    faissmem  --file F --sha256 H                RSS added by loading a FAISS file
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

STARTED = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def rss_mb() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / 1e6


def peak_rss_mb() -> float:
    """Peak RSS of this process since exec (VmHWM). Not ru_maxrss: under vfork/exec that also
    counts the parent's RSS at spawn time."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1e3  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def result(data: dict[str, Any]) -> None:
    print("RESULT " + json.dumps(data), flush=True)


def settings_for(args: argparse.Namespace) -> Any:
    from askdoc.config import Settings

    settings = replace(Settings(), index=Path(args.index), corpus=Path(args.corpus))
    if getattr(args, "chunk_tokens", None):
        overlap = max(1, args.chunk_tokens // 5)
        settings = replace(settings, chunk_tokens=args.chunk_tokens, chunk_overlap=overlap)
    if getattr(args, "store", ""):
        settings = replace(settings, store=args.store)
    return settings


def cmd_paint(args: argparse.Namespace) -> None:
    import asyncio

    from askdoc.tui.app import create_app

    app = create_app(settings_for(args))

    async def run() -> None:
        async with app.run_test(size=(120, 40)):
            heavy = sorted(m for m in ("torch", "sentence_transformers") if m in sys.modules)
            result({"seconds": time.perf_counter() - STARTED, "heavy_imported": heavy})
            sys.stdout.flush()
            os._exit(0)  # do not wait for the model-loading thread

    asyncio.run(run())


def cmd_first_answer(args: argparse.Namespace) -> None:
    import asyncio

    from askdoc.tui.app import create_app
    from askdoc.tui.widgets import CitedSentence, QuestionInput

    app = create_app(settings_for(args))

    async def run() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            while app.phase == "loading":
                await pilot.pause(0.01)
            field = app.query_one(QuestionInput)
            field.focus()
            field.value = args.question
            await pilot.press("enter")
            await pilot.pause(0.01)
            while app.busy:
                await pilot.pause(0.01)
            heavy = sorted(m for m in ("torch", "sentence_transformers") if m in sys.modules)
            answered = bool(app.query(CitedSentence)) or bool(app.query("AnswerView"))
            result({"seconds": time.perf_counter() - STARTED, "heavy": heavy, "answered": answered})
            sys.stdout.flush()
            os._exit(0)

    asyncio.run(run())


def cmd_warm(args: argparse.Namespace) -> None:
    """A loaded engine's hybrid questions and a torch sentence-transformers encode of each
    question, one after the other in this one process (1 thread each): same moment, same load."""
    from askdoc.embedder import Embedder
    from askdoc.engine import Engine

    engine = Engine(settings_for(args))
    engine.load()
    torch_model = Embedder(backend="torch")
    torch_model.load()
    torch_model.set_threads(1)
    model = torch_model._model
    questions = json.loads(Path(args.queries).read_text(encoding="utf-8"))
    for question in questions[:3]:  # warm-up: caches, first FAISS/SQLite pages
        engine.ask(question, mode="hybrid")
        model.encode(question)
    out: dict[str, list[float]] = {"total": [], "embed": [], "search": [], "answer": []}
    out["encode"] = []
    for question in questions:
        began = time.perf_counter()
        answer = engine.ask(question, mode="hybrid")
        out["total"].append(time.perf_counter() - began)
        began = time.perf_counter()
        model.encode(question)
        out["encode"].append(time.perf_counter() - began)
        timings = answer.timings
        out["embed"].append(timings.get("embed", 0.0))
        out["answer"].append(timings.get("answer", 0.0))
        out["search"].append(sum(timings.get(k, 0.0) for k in ("dense", "lexical", "fusion")))
    result({**out, "runtime": engine.embedder.runtime})


def cmd_export(args: argparse.Namespace) -> None:
    from askdoc.embedder import Embedder

    embedder = Embedder()
    embedder.load()
    result({"runtime": embedder.runtime, "notice": embedder.notice})


def cmd_latency(args: argparse.Namespace) -> None:
    base = rss_mb()
    from askdoc.engine import Engine
    from askdoc.ingest.sentences import split_sentences

    engine = Engine(settings_for(args))
    engine.embedder.load()
    engine.embedder.set_threads(1)
    engine.embedder.encode(["warm up the model", "and its working memory. " * 9])
    model_rss = rss_mb()
    engine.load()  # opens the index: SQLite and the FAISS file
    loaded_rss = rss_mb()
    embedded: list[int] = []
    embed_seconds: list[float] = []
    embed_sentences = engine._embed_sentences

    def counting(texts: Any) -> Any:  # how many sentences the answer step embeds, how long
        embedded.append(len(texts))
        began = time.perf_counter()
        try:
            return embed_sentences(texts)
        finally:
            embed_seconds.append(time.perf_counter() - began)

    engine._embed_sentences = counting  # type: ignore[method-assign]
    questions = json.loads(Path(args.queries).read_text(encoding="utf-8"))
    for question in questions[:3]:  # warm-up: caches, first FAISS/SQLite pages
        engine.ask(question)
    modes = ("dense", "lexical", "hybrid")
    runs: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    for number, question in enumerate(questions):
        for mode in modes[number % 3 :] + modes[: number % 3]:  # rotate: spread the noise
            before = len(embedded)
            began = time.perf_counter()
            answer = engine.ask(question, mode=mode)
            timings = dict(answer.timings)
            timings["total"] = time.perf_counter() - began
            timings["found"] = float(answer.found)
            timings["sentences"] = float(sum(embedded[before:]))
            timings["answer_embed"] = float(sum(embed_seconds[before:]))
            timings["candidates"] = float(sum(len(split_sentences(s.text)) for s in answer.sources))
            runs[mode].append(timings)
    result(
        {
            "runs": runs,
            "rss_base_mb": base,
            "rss_model_mb": model_rss,
            "rss_loaded_mb": loaded_rss,
            "rss_end_mb": rss_mb(),
            "peak_rss_mb": peak_rss_mb(),
        }
    )


def cmd_build(args: argparse.Namespace) -> None:
    from bench_stores import guard_memory, server_memory
    from bench_stub import StubEmbedder

    from askdoc.index.store import open_builder

    guard_memory()
    embedder = StubEmbedder(delay=args.delay)
    settings = settings_for(args)

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "embed":
            print(f"embed {done} {total}", flush=True)

    began = time.perf_counter()
    report = open_builder(settings, embedder).build(progress=progress if args.progress else None)
    result(
        {
            "seconds": time.perf_counter() - began,
            "chunks": report.chunks,
            "documents": report.documents,
            "embedded": report.embedded,
            "timings": report.timings,
            "peak_rss_mb": peak_rss_mb(),
            "server_peak_rss_mb": server_memory()[1],  # a Milvus Lite server's (it is still up)
        }
    )


def cmd_stores(args: argparse.Namespace) -> None:
    from bench_stores import guard_memory, partial_result, query_store

    def stopped(why: str, server_peak: float) -> None:
        result({**partial_result(why, server_peak), "peak_rss_mb": peak_rss_mb()})

    guard_memory(report=stopped)
    questions = json.loads(Path(args.queries).read_text(encoding="utf-8"))
    out = query_store(settings_for(args), questions)
    result({**out, "peak_rss_mb": peak_rss_mb()})


def cmd_faissmem(args: argparse.Namespace) -> None:
    import gc

    import faiss  # noqa: F401  (imported before the baseline is taken)

    from askdoc.index.vectors import load_faiss_file

    gc.collect()
    before = rss_mb()
    index = load_faiss_file(Path(args.file), args.sha256)
    gc.collect()
    result({"rss_added_mb": rss_mb() - before, "ntotal": int(index.ntotal)})


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("paint", "latency", "build", "first_answer", "warm", "stores"):
        command = sub.add_parser(name)
        command.add_argument("--index", required=True)
        command.add_argument("--corpus", required=True)
        command.add_argument("--queries", default="")
        command.add_argument("--question", default="")
        command.add_argument("--delay", type=float, default=0.0)
        command.add_argument("--chunk-tokens", type=int, default=0)
        command.add_argument("--progress", action="store_true")
        command.add_argument("--store", default="")
    mem = sub.add_parser("faissmem")
    mem.add_argument("--file", required=True)
    mem.add_argument("--sha256", required=True)
    sub.add_parser("export")
    args = parser.parse_args()
    commands = {
        "paint": cmd_paint,
        "latency": cmd_latency,
        "build": cmd_build,
        "faissmem": cmd_faissmem,
        "first_answer": cmd_first_answer,
        "warm": cmd_warm,
        "export": cmd_export,
        "stores": cmd_stores,
    }
    commands[args.command](args)


if __name__ == "__main__":
    main()
