"""Run ``askdoc index`` in its own process with the fake embedder (no torch), for the kill,
concurrency and memory tests. Not a test module: the tests start it as a subprocess.

    python tests/reliability/index_runner.py --corpus C --index I [options]

Prints one JSON line per build (generation, documents with their sha256, passages, skipped
files, peak memory). Hooks for the tests, all off by default:

- ``ASKDOC_TEST_KILL_AT=target:when:n``: SIGKILL this process ``before`` or ``after`` the n-th
  call of ``target`` (see TARGETS), e.g. ``write_faiss:before:1`` or ``commit:after:1``;
- ``--hold FILE``: once the write lock is taken, create ``FILE.locked`` and wait for ``FILE``;
- ``--rebuilds N``: rewrite every document with a new version marker, rebuild, N times.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "src")]

from askdoc.config import Settings  # noqa: E402
from askdoc.index import pending as staging  # noqa: E402
from askdoc.index import publish as generations  # noqa: E402
from askdoc.index import schema as store  # noqa: E402
from askdoc.index import vectors  # noqa: E402
from askdoc.index import writer as indexer  # noqa: E402
from askdoc.index.writer import IndexWriter as Indexer  # noqa: E402
from askdoc.ingest import isolation  # noqa: E402
from tests.conftest import FakeEmbedder  # noqa: E402

TARGETS: dict[str, tuple[Any, str]] = {
    "read": (isolation.IsolatedReader, "read"),
    "stage": (staging, "stage_document"),
    "encode": (FakeEmbedder, "encode"),
    "store_vectors": (staging, "store_vectors"),
    "promote": (staging, "promote_staged"),
    "seal": (generations, "seal"),
    "build_faiss": (generations, "build_faiss"),
    "fsync": (os, "fsync"),  # before: the FAISS temp file is written but not yet durable
    "write_faiss": (generations, "write_faiss_file"),
    "replace": (os, "replace"),  # before: the FAISS file is not yet in place
    "fsync_dir": (vectors, "fsync_dir"),
    "manifest": (generations, "write_manifest"),
    "commit": (indexer, "remove_stale_files"),  # before = just after the publishing COMMIT
}
FILE_TARGETS = frozenset({"build_faiss", "fsync", "write_faiss", "replace", "fsync_dir"})
"""Steps of writing a FAISS file: reached only by approximate generations (--exact-below 0)."""


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install_kill_point(spec: str) -> None:
    target, when, nth = spec.split(":")
    owner, name = TARGETS[target]
    real: Callable[..., Any] = getattr(owner, name)
    calls = 0

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if when == "before" and calls == int(nth):
            _die()
        result = real(*args, **kwargs)
        if when == "after" and calls == int(nth):
            _die()
        return result

    setattr(owner, name, wrapper)


def install_hold(hold: Path) -> None:
    real = staging.open_database

    def held(*args: Any, **kwargs: Any) -> Any:
        Path(f"{hold}.locked").touch()
        while not hold.exists():
            time.sleep(0.02)
        return real(*args, **kwargs)

    staging.open_database = held  # type: ignore[assignment]


def high_water_mb(pid: int | str = "self") -> float:
    """Peak resident memory of a process since it started its program (VmHWM; unlike
    ru_maxrss it does not inherit the parent's size at fork), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class _Forget(list[str]):
    """A list that keeps nothing."""

    def extend(self, _items: object) -> None:
        return None


def reader_peak_rss_mb() -> float:
    """Peak resident memory of the isolated reader process (read before it is stopped)."""
    pids = [r.pid for pool in isolation._IDLE.values() for r in pool if r.pid is not None]
    peak = max((high_water_mb(pid) for pid in pids), default=0.0)
    isolation.close_idle_readers()
    return peak


def build_once(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    embedder = FakeEmbedder()
    embedder.encoded = _Forget()  # the test double's log of every text would grow with the corpus
    report = Indexer(settings, embedder).build(full=args.full, wait=args.wait)
    conn = store.connect(settings.index / store.DB_NAME)
    try:
        docs = dict(conn.execute("SELECT path, sha256 FROM documents").fetchall())
    finally:
        conn.close()
    return {
        "generation": report.generation,
        "documents": docs,
        "chunks": report.chunks,
        "embedded": report.embedded,
        "added": list(report.added),
        "updated": list(report.updated),
        "removed": list(report.removed),
        "renamed": [list(r) for r in report.renamed],
        "skipped": [[s.path, s.reason] for s in report.skipped],
        "notes": list(report.notes),
        "seconds": round(time.perf_counter() - started, 3),
        "timings": {k: round(v, 3) for k, v in report.timings.items()},
        "peak_rss_mb": round(high_water_mb(), 1),
        "reader_peak_rss_mb": round(reader_peak_rss_mb(), 1),
        "finished_at": time.time(),
    }


def rewrite(corpus: Path, version: int) -> None:
    """Give every document new content carrying ``version`` (so every passage changes)."""
    for path in sorted(corpus.glob("*.txt")):
        topic = path.stem
        lines = [
            f"Version v{version} of {topic}, paragraph {n}: the v{version} edition describes "
            f"{topic} in detail, marker v{version}.\n\n"
            for n in range(3)
        ]
        path.write_text("".join(lines), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--wait", action="store_true")
    parser.add_argument("--hold", type=Path)
    parser.add_argument("--rebuilds", type=int, default=0)
    parser.add_argument("--file-timeout", type=float, default=30.0)
    parser.add_argument("--max-file-mb", type=float, default=50.0)
    parser.add_argument("--exact-below", type=int, default=200_000)
    parser.add_argument("--embed-group", type=int, default=0)
    args = parser.parse_args()
    settings = replace(
        Settings(),
        corpus=args.corpus,
        index=args.index,
        file_timeout=args.file_timeout,
        max_file_mb=args.max_file_mb,
        exact_below=args.exact_below,
    )
    if args.embed_group:
        staging.EMBED_GROUP = args.embed_group
    if os.environ.get("ASKDOC_TEST_KILL_AT"):
        install_kill_point(os.environ["ASKDOC_TEST_KILL_AT"])
    if args.hold:
        install_hold(args.hold)
    if args.rebuilds:
        for version in range(1, args.rebuilds + 1):
            rewrite(args.corpus, version)
            result = build_once(settings, args)
            print(json.dumps({"version": version, **result}), flush=True)
        return 0
    print(json.dumps(build_once(settings, args)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
