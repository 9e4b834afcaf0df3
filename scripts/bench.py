"""askdoc benchmarks: `make bench` (or `python scripts/bench.py`); `--scale` for 1M vectors and
`--stores-1m` for the stores at 1M passages.

Every figure is printed with its baseline measured in the same run (ratios hold on a noisy
machine; absolute times drift). Timings are medians of several runs. The run is compared with the
committed previous results, bench/results.json: a figure more than 20% worse prints a FLAG line
(the run never fails on it). `--save` writes this run's figures there.

Sections (default: all but scale):
    ratios     issue 15's everyday-use ratios (cold ask, TUI first answer, add one document, warm
               hybrid vs a torch encode) and bytes per passage (scripts/bench_ratios.py)
    startup    fresh processes: python, askdoc --help, askdoc status, heavy imports, TUI paint
    indexing   askdoc index (ONNX) vs raw sentence-transformers encode (torch), same chunks;
               1 vs 2 threads; add one document
    resume     kill a build after N committed vector groups, rerun, count re-embedded passages
    latency    warm query latency at 10k and 100k passages: dense / lexical / hybrid, split
    memory     peak RSS of `askdoc index` over 100k passages (stub embedder)
    faiss      exact vs approximate index at 10k and 100k vectors: build, memory, recall, latency
    stores     the embedded store (SQLite + FAISS) vs Milvus Lite at 100k passages: `askdoc index`
               throughput (stub embedder), query p50/p95 by mode, disk, memory, as ratios
               (scripts/bench_stores.py; about 10 minutes)
    scale      the faiss table's 1M row (about 3 minutes; `--scale`)
    stores-1m  the stores section at 1M passages (about 2 hours; `--stores-1m`)
    sweep      recall/latency across nprobe and efSearch at 100k (`--only sweep`; context)

Nothing is written to the repo's corpus/ or index/: every corpus and index lives in a temporary
folder. Real-model vectors of generated passages are cached in ~/.cache/askdoc-bench (the first
run embeds them: about 8 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).resolve().parent
REPO = SCRIPTS.parent
sys.path.insert(0, str(SCRIPTS))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
from bench_corpus import (  # noqa: E402
    generate_documents,
    generate_passages,
    questions_for,
    write_corpus,
)
from bench_ratios import bench_ratios  # noqa: E402
from bench_stores import bench_stores  # noqa: E402

RESULTS = REPO / "bench" / "results.json"
CHILD = SCRIPTS / "bench_child.py"
SECTIONS = ("ratios", "startup", "indexing", "resume", "latency", "memory", "faiss", "stores")
WORSE_BY = 0.20


@dataclass
class Figure:
    label: str
    value: float
    unit: str
    better: str  # "lower", "higher" or "" (context only, never flagged)
    baseline: str = ""


@dataclass
class Bench:
    work: Path
    quick: bool = False
    figures: dict[str, Figure] = field(default_factory=dict)
    _embedder: Any = None
    _torch: Any = None
    _pool: tuple[list[str], np.ndarray] | None = None

    # -- output

    def add(
        self, key: str, label: str, value: float, unit: str, better: str, baseline: str = ""
    ) -> None:
        self.figures[key] = Figure(label, float(value), unit, better, baseline)
        shown = f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
        print(f"  {label:<52} {shown:>9} {unit:<5} {baseline}", flush=True)

    @staticmethod
    def section(title: str) -> None:
        print(f"\n== {title} ==", flush=True)

    # -- shared resources

    @property
    def embedder(self) -> Any:
        """The real model as askdoc runs it (ONNX), loaded once."""
        if self._embedder is None:
            from askdoc.embedder import Embedder

            self._embedder = Embedder()
            self._embedder.load()
        return self._embedder

    @property
    def torch_embedder(self) -> Any:
        """The real model through torch sentence-transformers (the baselines), loaded once."""
        if self._torch is None:
            from askdoc.embedder import Embedder

            self._torch = Embedder(backend="torch")
            self._torch.load()
        return self._torch

    def pool(self) -> tuple[list[str], np.ndarray]:
        if self._pool is None:
            from bench_vectors import real_pool

            from askdoc.embedder import Embedder

            # a cached pool needs only the model's fingerprint; a cold cache loads the model
            self._pool = real_pool(self._embedder or Embedder())
        return self._pool

    def reps(self, normal: int) -> int:
        return 1 if self.quick else normal


# ---------------------------------------------------------------- helpers


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def wall(cmd: Sequence[str], cwd: Path | None = None) -> float:
    began = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - began


def child(*args: str, timeout: float = 3600) -> dict[str, Any]:
    """Run scripts/bench_child.py and return its RESULT."""
    done = subprocess.run(
        [sys.executable, str(CHILD), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[7:])
            return result
    raise RuntimeError(f"bench_child {args[0]} failed:\n{done.stderr[-3000:]}")


def timed(fn: Callable[[], Any]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def stub_index(work: Path, docs: int, words: int, seed: int, **extra: str) -> tuple[Path, Path]:
    """A generated corpus indexed with the stub embedder (real fingerprint): (corpus, index)."""
    corpus, index = work / "corpus", work / "index"
    write_corpus(corpus, generate_documents(docs, words, seed=seed))
    args = ["build", "--index", str(index), "--corpus", str(corpus)]
    for key, value in extra.items():
        args += [f"--{key.replace('_', '-')}", value]
    child(*args)
    return corpus, index


# ---------------------------------------------------------------- start-up


def bench_startup(b: Bench) -> None:
    b.section("start-up: fresh processes, median of several (each a new interpreter)")
    corpus, index = stub_index(b.work / "tiny", 5, 200, seed=1)
    askdoc = str(Path(sys.executable).parent / "askdoc")
    py = sys.executable
    n = b.reps(5)
    runs: dict[str, list[float]] = {k: [] for k in ("python", "help", "status", "paint")}
    paint_heavy: set[str] = set()
    for _ in range(n):  # interleaved, so a busy moment hits every command alike
        runs["python"].append(wall([py, "-c", "pass"]))
        runs["help"].append(wall([askdoc, "--help"]))
        runs["status"].append(
            wall([askdoc, "status", "--index", str(index), "--corpus", str(corpus)])
        )
        began = time.perf_counter()
        result = child("paint", "--index", str(index), "--corpus", str(corpus))
        runs["paint"].append(time.perf_counter() - began)
        paint_heavy.update(result["heavy_imported"])
    heavy: dict[str, list[float]] = {"sentence_transformers": [], "torch": [], "faiss": []}
    for _ in range(b.reps(3)):
        for module in heavy:
            heavy[module].append(wall([py, "-c", f"import {module}"]))
    base = median(runs["python"])
    st = median(heavy["sentence_transformers"])
    b.add("startup.python_s", "python -c pass (baseline)", base, "s", "")
    b.add(
        "startup.help_s",
        "askdoc --help",
        median(runs["help"]),
        "s",
        "lower",
        f"= python + {median(runs['help']) - base:.2f} s",
    )
    b.add(
        "startup.status_s",
        "askdoc status (5-document index)",
        median(runs["status"]),
        "s",
        "lower",
        f"= python + {median(runs['status']) - base:.2f} s",
    )
    for module, times in heavy.items():
        b.add(f"startup.import_{module}_s", f"python -c 'import {module}'", median(times), "s", "")
    paint = median(runs["paint"])
    b.add(
        "startup.tui_paint_s",
        "TUI first screen mounted (from process start)",
        paint,
        "s",
        "lower",
        f"= {paint / st:.2f} x import sentence_transformers ({st:.1f} s); goal <= 1 s",
    )
    print(f"  heavy modules imported before the first paint: {sorted(paint_heavy) or 'none'}")
    modules = startup_modules(askdoc, index, corpus)
    for command, found in modules.items():
        print(f"  {command}: heavy modules imported: {found or 'none'}")
    b.add(
        "startup.heavy_modules",
        "heavy modules imported by --help/status/paint",
        sum(len(v) for v in modules.values()) + len(paint_heavy),
        "",
        "lower",
        "goal 0",
    )


def startup_modules(askdoc: str, index: Path, corpus: Path) -> dict[str, list[str]]:
    probe = (
        "import sys, contextlib, io\nfrom askdoc.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: main(sys.argv[1:])\n    except SystemExit: pass\n"
        "heavy = ('torch', 'sentence_transformers', 'transformers', 'faiss', 'sklearn')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))"
    )
    out = {}
    for name, args in (
        ("askdoc --help", ["--help"]),
        ("askdoc status", ["status", "--index", str(index), "--corpus", str(corpus)]),
    ):
        done = subprocess.run(
            [sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True
        )
        out[name] = json.loads(done.stdout.strip().splitlines()[-1].replace("'", '"'))
    return out


# ---------------------------------------------------------------- indexing


def chunk_texts(index: Path, path: str | None = None) -> list[str]:
    conn = sqlite3.connect(index / "askdoc.sqlite3")
    try:
        sql = "SELECT c.heading, c.text FROM chunks c JOIN documents d ON d.id = c.doc_id"
        rows = conn.execute(sql + (" WHERE d.path = ?" if path else ""), (path,) if path else ())
        return [f"{h}\n{t}" if h else t for h, t in rows.fetchall()]
    finally:
        conn.close()


def bench_indexing(b: Bench) -> None:
    from askdoc.config import Settings
    from askdoc.index.writer import IndexWriter as Indexer

    b.section(
        "indexing: `askdoc index` (ONNX) vs raw sentence-transformers model.encode (torch) on the "
        "same chunks (same threads)"
    )
    embedder = b.embedder
    baseline = b.torch_embedder
    corpus = b.work / "indexing" / "corpus"
    docs = generate_documents(60 if b.quick else 240, 110, seed=3)
    write_corpus(corpus, docs)
    model = baseline._model
    texts: list[str] = []
    index = b.work / "indexing" / "index-0"
    report: Any = None
    run = 0

    def encode_raw(threads: int, batch_size: int) -> None:
        baseline.set_threads(threads)
        model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    default = Settings().index_threads
    for threads in dict.fromkeys((default, 1)):  # the default (0: all cores), then one
        settings = replace(Settings(), corpus=corpus, index_threads=threads)
        ratios, index_rates, raw_rates, embed_share = [], [], [], []
        run_raw = partial(encode_raw, threads, settings.batch_size)

        for rep in range(b.reps(3)):
            index = b.work / "indexing" / f"index-{run}"
            run += 1

            def run_index(index: Path = index, settings: Settings = settings) -> None:
                nonlocal report
                report = Indexer(replace(settings, index=index), embedder).build()

            if rep % 2 == 0:
                index_s = timed(run_index)
                texts = texts or chunk_texts(index)
                raw_s = timed(run_raw)
            else:  # alternate the order: drift on a shared machine hits both sides
                raw_s = timed(run_raw)
                index_s = timed(run_index)
            index_rates.append(report.chunks / index_s)
            raw_rates.append(len(texts) / raw_s)
            ratios.append((report.chunks / index_s) / (len(texts) / raw_s))
            embed_share.append(report.timings.get("embed", 0.0) / index_s)
        if threads == default:
            print(
                f"  corpus: {len(docs)} generated documents, {report.chunks} passages, "
                f"{report.embedded} embedded (identical passages share one vector)"
            )
        key = "" if threads == default else f"_{threads}thread"
        when = f"index_threads={threads}" + (" (default)" if threads == default else "")
        b.add(
            f"indexing.raw{key}_chunks_per_s",
            f"{when}: raw sentence-transformers encode (torch, baseline)",
            median(raw_rates),
            "/s",
            "",
        )
        b.add(
            f"indexing.index{key}_chunks_per_s",
            f"{when}: askdoc index",
            median(index_rates),
            "/s",
            "",
        )
        b.add(
            f"indexing.ratio{key}",
            f"{when}: askdoc index / raw encode",
            median(ratios),
            "x",
            "higher",
            f"goal >= 0.9; embedding is {median(embed_share):.0%} of the build",
        )
    settings = replace(Settings(), corpus=corpus)
    threads = settings.index_threads

    # threads: encode the same passages with 1 and 2 torch threads, interleaved, on the machine
    # as it is and again with one competing busy process (a shared machine, or a second job)
    texts = chunk_texts(index)[:64]
    for busy in (False, True):
        burner = None
        if busy:
            burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            rates: dict[int, list[float]] = {1: [], 2: []}
            for _ in range(b.reps(3)):
                for count in (1, 2):
                    embedder.set_threads(count)
                    rates[count].append(len(texts) / timed(lambda: embedder.encode(texts)))
        finally:
            if burner is not None:
                burner.kill()
                burner.wait()
        one, two = median(rates[1]), median(rates[2])
        key, when = ("busy", " + 1 busy process") if busy else ("", "")
        b.add(f"indexing.threads1{key}_per_s", f"encode, 1 thread{when} (baseline)", one, "/s", "")
        b.add(
            f"indexing.threads2{key}_per_s",
            f"encode, 2 threads{when}",
            two,
            "/s",
            "",
            f"= {two / one:.2f} x 1 thread",
        )

    # add one document to the indexed corpus
    build_s, alone_s = [], []
    reports: list[Any] = []
    for rep in range(b.reps(3)):
        new = generate_documents(1, 220, seed=1000 + rep)[0]
        path = f"added-{rep}.md"
        (corpus / path).write_text(new.text, encoding="utf-8")
        build_s.append(timed(lambda: Indexer(replace(settings, index=index), embedder).build()))
        texts = chunk_texts(index, path)
        embedder.set_threads(threads)
        alone_s.append(timed(partial(embedder.encode, texts)))
    b.add("indexing.add_one_s", "askdoc index after adding one document", median(build_s), "s", "")
    b.add(
        "indexing.add_one_ratio",
        "  ... / embedding that document alone",
        median([x / y for x, y in zip(build_s, alone_s, strict=True)]),
        "x",
        "lower",
        f"(embedding alone: {median(alone_s):.2f} s, {len(texts)} passages)",
    )
    # a copy of an indexed document: its passages are already embedded (vectors keyed by text)
    source = docs[0]
    (corpus / "copy-of-doc.md").write_text(source.text, encoding="utf-8")
    copy_s = timed(
        lambda: reports.append(Indexer(replace(settings, index=index), embedder).build())
    )
    b.add(
        "indexing.copy_embedded",
        "passages embedded for a copy of an indexed doc",
        reports[-1].embedded,
        "",
        "lower",
        f"of {len(chunk_texts(index, 'copy-of-doc.md'))} ({copy_s:.2f} s)",
    )
    embedder.set_threads(1)


# ---------------------------------------------------------------- resume


def bench_resume(b: Bench) -> None:
    from askdoc.index.pending import EMBED_GROUP

    b.section(f"resume: kill a build mid-way, rerun (vector groups of {EMBED_GROUP})")
    groups = 2
    work = b.work / "resume"
    corpus, index = work / "corpus", work / "index"
    # small passages (chunk_tokens 40) so three groups need only ~400 documents
    write_corpus(corpus, generate_documents(220, 1000, seed=11))
    cmd = [
        sys.executable,
        str(CHILD),
        "build",
        "--index",
        str(index),
        "--corpus",
        str(corpus),
        "--chunk-tokens",
        "40",
        "--delay",
        "0.0004",
        "--progress",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    done = total = 0
    for line in proc.stdout:
        if line.startswith("embed "):
            done, total = (int(x) for x in line.split()[1:3])
            if done >= groups * EMBED_GROUP + EMBED_GROUP // 2:
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait()
    conn = sqlite3.connect(index / "askdoc.sqlite3")
    committed = int(conn.execute("SELECT count(*) FROM vectors").fetchone()[0])
    conn.close()
    rerun = child("build", "--index", str(index), "--corpus", str(corpus), "--chunk-tokens", "40")
    redone = rerun["embedded"] - (total - done)
    print(f"  {total} distinct passages; killed (SIGKILL) after {done} were embedded")
    b.add(
        "resume.committed",
        "vectors committed before the kill",
        committed,
        "",
        "",
        f"= {committed / EMBED_GROUP:.2f} groups",
    )
    b.add(
        "resume.rerun_embedded",
        "passages embedded by the rerun",
        rerun["embedded"],
        "",
        "",
        f"= total - committed ({total - committed})",
    )
    b.add(
        "resume.reembedded",
        "passages embedded twice (lost with the kill)",
        redone,
        "",
        "lower",
        f"< one group ({EMBED_GROUP}); reused {committed}",
    )


# ---------------------------------------------------------------- latency


def synthetic_passages(b: Bench, count: int) -> tuple[list[str], np.ndarray]:
    """The real pool (real vectors) plus generated passages with resampled vectors."""
    from bench_vectors import resample

    texts, pool = b.pool()
    if count <= len(texts):
        return texts[:count], pool[:count]
    extra = generate_passages(count - len(texts), seed=count)
    return texts + extra, np.vstack([pool, resample(pool, count - len(texts), seed=count)])


def bench_answer_batching(b: Bench) -> None:
    """The answer step's sentence embedding: one padded batch (before) vs length batches."""
    from askdoc.answer import AnswerParams
    from askdoc.ingest.sentences import split_sentences

    params = AnswerParams()
    limit = getattr(params, "embed_limit", 1000)  # answer.py embeds at most this many
    chars = getattr(params, "embed_chars", 100_000)
    texts, _ = b.pool()
    embedder = b.embedder
    embedder.set_threads(1)
    rng = np.random.default_rng(3)
    groups = []
    for _ in range(6 if b.quick else 16):
        picked = [texts[int(i)] for i in rng.choice(len(texts), 5, replace=False)]
        sentences = [p[x:y][:chars] for p in picked for x, y in split_sentences(p)]
        keep = rng.choice(len(sentences), min(limit, len(sentences)), replace=False)
        groups.append([sentences[int(i)] for i in keep])
    padded, batched = [], []
    for _ in range(b.reps(2)):
        for group in groups:
            ordered = sorted(group, key=len, reverse=True)
            padded.append(timed(partial(embedder._onnx.embed, ordered[:64])))
            batched.append(timed(partial(embedder.encode, group, batch_size=64)))
    size = median([len(g) for g in groups])
    b.add(
        "latency.sentences_one_batch_ms",
        f"embed {size:.0f} answer sentences, 1 padded batch",
        median(padded) * 1000,
        "ms",
        "",
    )
    b.add(
        "latency.sentences_length_batches_ms",
        "  ... in length batches (Embedder.encode)",
        median(batched) * 1000,
        "ms",
        "lower",
        f"= {median(batched) / median(padded):.2f} x one padded batch",
    )


def bench_latency(b: Bench, sizes: Sequence[int]) -> None:
    from bench_index import write_index

    from askdoc.embedder import Embedder

    b.section("warm query latency: engine loaded, 1 thread, generated questions (ms)")
    bench_answer_batching(b)
    texts, _ = b.pool()
    questions = questions_for(texts, 12 if b.quick else 40, seed=5)
    qfile = b.work / "questions.json"
    qfile.write_text(json.dumps(questions), encoding="utf-8")
    for size in sizes:
        tag = f"{size // 1000}k"
        passages, vectors = synthetic_passages(b, size)
        folder = b.work / f"latency-{tag}"
        manifest, publish_s = write_index(folder / "index", passages, vectors, Embedder())
        (folder / "corpus").mkdir(exist_ok=True)
        del vectors
        print(
            f"  {tag}: {manifest.chunks} passages, FAISS {manifest.faiss_kind}"
            f"{'' if manifest.faiss_kind == 'flat' else ' (built as IVF-SQ8 by build_faiss)'}, "
            f"published in {publish_s:.1f} s"
        )
        out = child(
            "latency",
            "--index",
            str(folder / "index"),
            "--corpus",
            str(folder / "corpus"),
            "--queries",
            str(qfile),
        )
        for mode in ("dense", "lexical", "hybrid"):
            runs = out["runs"][mode]
            total = [r["total"] * 1000 for r in runs]
            retrieval = [
                (r["embed"] + r.get("dense", 0) + r.get("lexical", 0) + r.get("fusion", 0)) * 1000
                for r in runs
            ]
            parts = "  ".join(
                f"{k} {median([r.get(k, 0.0) * 1000 for r in runs]):.1f}"
                for k in ("embed", "dense", "lexical", "fusion", "answer")
            )
            b.add(
                f"latency.{tag}.{mode}.p50_ms",
                f"{tag} {mode}: p50",
                median(total),
                "ms",
                "lower",
                f"p95 {pct(total, 95):.0f}",
            )
            b.add(
                f"latency.{tag}.{mode}.retrieval_p50_ms",
                f"{tag} {mode}: p50 without answer",
                median(retrieval),
                "ms",
                "lower",
                f"p95 {pct(retrieval, 95):.0f} | {parts}",
            )
        hybrid = out["runs"]["hybrid"]
        answer = median([r["answer"] * 1000 for r in hybrid])
        embed = median([r.get("answer_embed", 0.0) * 1000 for r in hybrid])
        sentences = median([r["sentences"] for r in hybrid])
        share = answer / median([r["total"] * 1000 for r in hybrid])
        print(
            f"  {tag} hybrid: the answer step is {share:.0%} of the p50: {answer:.0f} ms, of "
            f"which {embed:.0f} ms embed {sentences:.0f} candidate sentences"
        )
        b.add(
            f"latency.{tag}.engine_index_mb",
            f"{tag}: engine RSS added by the open index",
            out["rss_loaded_mb"] - out["rss_model_mb"],
            "MB",
            "lower",
            f"model alone {out['rss_model_mb'] - out['rss_base_mb']:.0f} MB; "
            f"peak {out['peak_rss_mb']:.0f} MB",
        )


# ---------------------------------------------------------------- memory


def bench_memory(b: Bench) -> None:
    b.section("memory: peak RSS of `askdoc index` (stub embedder: no model, random vectors)")
    docs = 40 if b.quick else 1600
    work = b.work / "memory"
    write_corpus(work / "corpus", generate_documents(docs, 4750, seed=21))
    began = time.perf_counter()
    out = child("build", "--index", str(work / "index"), "--corpus", str(work / "corpus"))
    seconds = time.perf_counter() - began
    chunks = out["chunks"]
    vectors_mb = chunks * 384 * 4 / 1e6
    print(
        f"  {docs} documents, {chunks} passages, built in {seconds:.0f} s "
        f"(read+chunk {out['timings'].get('read', 0):.0f} s, "
        f"publish {out['timings'].get('publish', 0):.0f} s)"
    )
    b.add(
        "memory.index_peak_mb",
        "askdoc index peak RSS",
        out["peak_rss_mb"],
        "MB",
        "lower",
        f"all vectors as float32 = {vectors_mb:.0f} MB",
    )
    stat = child("faissmem", "--file", *faiss_file(work / "index"))
    b.add(
        "memory.faiss_loaded_mb",
        "its FAISS index, loaded",
        stat["rss_added_mb"],
        "MB",
        "",
        f"{stat['ntotal']} vectors",
    )


def faiss_file(index: Path) -> list[str]:
    from askdoc.index.manifest import read_manifest

    conn = sqlite3.connect(index / "askdoc.sqlite3")
    try:
        manifest = read_manifest(conn, index / "askdoc.sqlite3")
    finally:
        conn.close()
    assert manifest is not None
    return [str(index / manifest.faiss_file), "--sha256", manifest.faiss_sha256]


# ---------------------------------------------------------------- faiss


def query_vectors(b: Bench, count: int = 200) -> np.ndarray:
    texts, _ = b.pool()
    embedder = b.embedder
    embedder.set_threads(1)
    return np.asarray(embedder.encode(questions_for(texts, count, seed=17), batch_size=64))


def search_latency(index: Any, queries: np.ndarray, count: int = 200) -> list[float]:
    out = []
    for i in range(min(count, len(queries))):
        began = time.perf_counter()
        index.search(queries[i : i + 1], 10)
        out.append((time.perf_counter() - began) * 1000)
    return out


LABELS = {
    "flat": "flat",
    "ivf": "IVF-SQ8",
    "hnsw": "HNSW32 ef16 (old build)",
    "ivf-first": "IVF-SQ8 trained on first rows",
}


def recall_at_10(index: Any, queries: np.ndarray, truth: np.ndarray) -> float:
    _, found = index.search(queries, 10)
    return float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]))


def build_other(kind: str, base: np.ndarray) -> Any:
    """build_faiss for "flat" and "ivf"; the old HNSW build, and IVF trained on the first rows
    of topic-sorted vectors (what training on rows in document order does), for contrast."""
    import faiss

    from askdoc.index.vectors import build_faiss, ivf_layout

    dim = base.shape[1]
    if kind in ("flat", "ivf"):
        return build_faiss(((i, base[i].tobytes()) for i in range(len(base))), dim, kind)
    faiss.omp_set_num_threads(1)
    if kind == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 80
        index = faiss.IndexIDMap2(hnsw)
        index.add_with_ids(base, np.arange(len(base), dtype=np.int64))
        return index
    # documents arrive grouped by topic: sort by a coarse clustering, train on the first rows
    coarse = faiss.Kmeans(dim, 64, niter=10, seed=3, spherical=True)
    coarse.train(base[np.random.default_rng(0).choice(len(base), 20_000, replace=False)])
    _, label = coarse.index.search(base, 1)
    order = np.argsort(label[:, 0], kind="stable")
    nlist, nprobe, train = ivf_layout(len(base))
    ivf = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatIP(dim),
        dim,
        nlist,
        faiss.ScalarQuantizer.QT_8bit,
        faiss.METRIC_INNER_PRODUCT,
    )
    ivf.train(base[order[:train]])
    ivf.nprobe = nprobe
    index = faiss.IndexIDMap2(ivf)
    for begin in range(0, len(base), 65536):
        part = order[begin : begin + 65536]
        index.add_with_ids(base[part], part.astype(np.int64))
    return index


def bench_faiss(b: Bench, sizes: Sequence[int]) -> None:
    import faiss

    from askdoc.config import Settings
    from askdoc.index.vectors import write_faiss_file

    b.section(
        "FAISS: real-model vectors of generated text (resampled past 3,000); "
        "200 real question vectors; 1 thread"
    )
    queries = query_vectors(b)
    threshold = Settings().exact_below
    if not b.quick and 100_000 in sizes:  # where exact search stops being cheap
        _, base = synthetic_passages(b, 100_000)
        faiss.omp_set_num_threads(1)
        for count in (25_000, 50_000):
            flat = faiss.IndexFlatIP(base.shape[1])
            flat.add(base[:count])
            b.add(
                f"faiss.flat_{count // 1000}k.p50_ms",
                f"{count // 1000}k flat: query p50",
                median(search_latency(flat, queries)),
                "ms",
                "",
                f"exact_below = {threshold:,}",
            )
            del flat
        del base
    for size in sizes:
        tag = f"{size // 1000}k" if size < 1_000_000 else f"{size // 1_000_000}M"
        _, base = synthetic_passages(b, size)
        faiss.omp_set_num_threads(2)
        exact = faiss.IndexFlatIP(base.shape[1])
        exact.add(base)
        _, truth = exact.search(queries, 10)
        del exact
        flat_p50 = 0.0
        kinds = ["flat", "ivf"]
        if size == 100_000:
            kinds.append("hnsw")  # the previous build_faiss, for contrast
        if size >= 1_000_000:
            kinds.append("ivf-first")  # trained on the first rows, as they arrive
        for kind in kinds:
            began = time.perf_counter()
            index = build_other(kind, base)
            build_s = time.perf_counter() - began
            faiss.omp_set_num_threads(1)
            recall = recall_at_10(index, queries, truth)
            lat = search_latency(index, queries)
            folder = b.work / f"faiss-{tag}-{kind}"
            folder.mkdir(parents=True, exist_ok=True)
            digest = write_faiss_file(index, folder, "vectors-00000001.faiss")
            extra = ""
            if kind == "hnsw":
                graph: Any = faiss.downcast_index(index.index)
                graph.hnsw.efSearch = 128
                extra = f"; efSearch 128: recall {recall_at_10(index, queries, truth):.3f}, "
                extra += f"p50 {median(search_latency(index, queries)):.2f} ms"
            del index
            mem = child(
                "faissmem", "--file", str(folder / "vectors-00000001.faiss"), "--sha256", digest
            )["rss_added_mb"]
            (folder / "vectors-00000001.faiss").unlink()
            chosen = (kind == "flat") == (size < threshold) and kind in ("flat", "ivf")
            label = f"{tag} {LABELS[kind]}{' (chosen)' if chosen else ''}"
            better = "lower" if chosen else ""
            p50 = median(lat)
            if kind == "flat":
                flat_p50 = p50
            b.add(
                f"faiss.{tag}.{kind}.p50_ms",
                f"{label}: query p50",
                p50,
                "ms",
                better,
                f"p95 {pct(lat, 95):.1f}"
                + ("" if kind == "flat" else f" = {p50 / flat_p50:.3f} x flat"),
            )
            b.add(
                f"faiss.{tag}.{kind}.recall10",
                f"{label}: recall@10 vs exact",
                recall,
                "",
                "higher" if chosen else "",
                "goal >= 0.95" + extra,
            )
            b.add(f"faiss.{tag}.{kind}.build_s", f"{label}: build", build_s, "s", "")
            b.add(
                f"faiss.{tag}.{kind}.memory_mb",
                f"{label}: RSS of the loaded index",
                mem,
                "MB",
                better,
                f"float32 vectors = {size * 384 * 4 / 1e6:.0f} MB",
            )
        del base


def bench_sweep(b: Bench, size: int = 100_000) -> None:
    """Why these parameters: recall and latency across nprobe, efSearch and SQ8 alone."""
    import faiss

    b.section(f"sweep at {size // 1000}k vectors (context for build_faiss's parameters)")
    queries = query_vectors(b)
    _, base = synthetic_passages(b, size)
    faiss.omp_set_num_threads(2)
    exact = faiss.IndexFlatIP(base.shape[1])
    exact.add(base)
    _, truth = exact.search(queries, 10)
    del exact
    faiss.omp_set_num_threads(1)
    sq8 = faiss.IndexScalarQuantizer(
        base.shape[1], faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    sq8.train(base[:20_000])
    sq8.add(base)
    print(
        f"  SQ8 without IVF (the quantization ceiling): recall@10 "
        f"{recall_at_10(sq8, queries, truth):.3f}"
    )
    del sq8
    index = build_other("ivf", base)
    ivf: Any = faiss.extract_index_ivf(index)
    chosen = ivf.nprobe
    for nprobe in (8, 16, 24, 32, 48, 64, 128):
        ivf.nprobe = nprobe
        lat = median(search_latency(index, queries))
        mark = "  <- build_faiss" if nprobe == chosen else ""
        print(
            f"  IVF{ivf.nlist}-SQ8 nprobe {nprobe:>3}: recall@10 "
            f"{recall_at_10(index, queries, truth):.3f}, p50 {lat:.2f} ms{mark}"
        )
    del index
    index = build_other("hnsw", base)
    graph: Any = faiss.downcast_index(index.index)
    for ef in (16, 64, 128, 256):
        graph.hnsw.efSearch = ef
        lat = median(search_latency(index, queries))
        print(
            f"  HNSW32 efSearch {ef:>3}: recall@10 {recall_at_10(index, queries, truth):.3f}, "
            f"p50 {lat:.2f} ms"
        )


# ---------------------------------------------------------------- regression check


def worse_by(better: str, value: float, before: float) -> float:
    """How much worse ``value`` is than ``before`` (0.25 = 25% worse; <= 0: not worse)."""
    if better == "lower":
        if before <= 0:
            return float("inf") if value > before else 0.0
        return value / before - 1
    if value <= 0:
        return float("inf") if before > 0 else 0.0
    return before / value - 1


def compare(figures: dict[str, Figure], previous: Path) -> None:
    if not previous.is_file():
        print(f"\n(no previous results in {previous}: nothing to compare)")
        return
    old = json.loads(previous.read_text(encoding="utf-8")).get("figures", {})
    shown = previous.resolve()
    shown = shown.relative_to(REPO) if shown.is_relative_to(REPO) else shown
    print(f"\n== compared with {shown} (FLAG: more than {WORSE_BY:.0%} worse) ==")
    flagged = 0
    for key, fig in figures.items():
        before = old.get(key, {}).get("value")
        if before is None or not fig.better:
            continue
        change = worse_by(fig.better, fig.value, float(before))
        if change > WORSE_BY:
            flagged += 1
            print(
                f"FLAG {key}: {fig.value:.4g} {fig.unit} now, {before:.4g} before "
                f"({change:+.0%} worse)"
            )
    print(f"{flagged} figure(s) flagged")


def save(figures: dict[str, Figure], path: Path) -> None:
    data: dict[str, Any] = {"figures": {}}
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
    data["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "when": time.strftime("%Y-%m-%d %H:%M"),
    }
    for key, fig in figures.items():
        data["figures"][key] = fig.__dict__
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"saved {len(figures)} figures to {path}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", action="store_true", help="only the 1M row of the FAISS table")
    parser.add_argument(
        "--stores-1m", action="store_true", help="only the stores section, at 1M passages"
    )
    parser.add_argument(
        "--only", help=f"comma-separated: {', '.join(SECTIONS)}, scale, stores-1m, sweep"
    )
    parser.add_argument("--quick", action="store_true", help="one repetition, small corpora")
    parser.add_argument("--save", action="store_true", help=f"write the figures to {RESULTS}")
    parser.add_argument("--compare", type=Path, default=RESULTS, help="previous results")
    args = parser.parse_args(argv)
    sections = (args.only or ",".join(SECTIONS)).split(",")
    if args.scale or args.stores_1m:
        sections = ["scale"] * args.scale + ["stores-1m"] * args.stores_1m
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="askdoc-bench-") as tmp:
        b = Bench(Path(tmp), quick=args.quick)
        print(
            f"askdoc bench: {os.cpu_count()} cpus, python {platform.python_version()}, "
            f"sections {', '.join(sections)}; temp folder {tmp}"
        )
        runners: dict[str, Callable[[], None]] = {
            "ratios": lambda: bench_ratios(b),
            "startup": lambda: bench_startup(b),
            "indexing": lambda: bench_indexing(b),
            "resume": lambda: bench_resume(b),
            "latency": lambda: bench_latency(b, [10_000] if args.quick else [10_000, 100_000]),
            "memory": lambda: bench_memory(b),
            "faiss": lambda: bench_faiss(b, [10_000] if args.quick else [10_000, 100_000]),
            "scale": lambda: bench_faiss(b, [1_000_000]),
            "stores": lambda: bench_stores(b, 10_000 if args.quick else 100_000),
            "stores-1m": lambda: bench_stores(b, 1_000_000),
            "sweep": lambda: bench_sweep(b),
        }
        for name in sections:
            if name not in runners:
                parser.error(f"unknown section {name!r}")
            runners[name]()
        figures = b.figures
    print(f"\nbench finished in {(time.perf_counter() - began) / 60:.1f} min")
    compare(figures, args.compare)
    if args.save:
        save(figures, RESULTS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
