"""The isolated reader process: per-file time limit, crash containment, memory limit, no orphan
worker, and one worker reused across files and builds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hostile_files import one_page_pdf
from reliability_helpers import REPO, fake_settings, figure

from askdoc.embedder import packaged_model_path
from askdoc.engine import Engine
from askdoc.errors import ReadError
from askdoc.ingest import isolation, read_worker
from askdoc.ingest.chunking import ChunkSettings
from askdoc.ingest.isolation import IsolatedReader, WorkerConfig
from askdoc.ingest.readers import FileEntry, scan_corpus
from askdoc.tokens import TokenCounter
from tests.conftest import FakeEmbedder

SLOW_PDF = one_page_pdf(b"BT /F1 12 Tf " + b"1 0 Td (word) Tj " * 1_500_000 + b"ET", True)


def config(max_mb: int = 5) -> WorkerConfig:
    return WorkerConfig(max_mb << 20, TokenCounter.of_model(packaged_model_path()), ChunkSettings())


def entries(root: Path) -> dict[str, FileEntry]:
    found, _ = scan_corpus(root, 50 << 20)
    return {e.path: e for e in found}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, FileEntry]:
    (tmp_path / "good.txt").write_text("The copper beacon stands on the granite quarry.\n")
    (tmp_path / "slow.pdf").write_bytes(SLOW_PDF)
    return entries(tmp_path)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not status.exists() or "State:\tZ" not in status.read_text()


def test_timeout_kills_the_worker_and_the_next_file_is_read(files: dict[str, FileEntry]) -> None:
    reader = IsolatedReader(config(), timeout=1.0)
    try:
        assert reader.read(files["good.txt"]).chunks
        first = reader.pid
        assert first is not None
        started = time.perf_counter()
        with pytest.raises(ReadError, match=r"^took longer than 1 s to read$"):
            reader.read(files["slow.pdf"])
        waited = time.perf_counter() - started
        assert 1.0 <= waited < 10 and not alive(first)
        assert reader.read(files["good.txt"]).chunks and reader.pid != first
    finally:
        reader.close()
    figure("per-file time limit", limit_s=1.0, skipped_after_s=round(waited, 2))


def test_a_crashed_worker_costs_one_file(files: dict[str, FileEntry]) -> None:
    reader = IsolatedReader(config(), timeout=60.0)
    try:
        reader.read(files["good.txt"])
        pid = reader.pid
        assert pid is not None
        threading.Timer(0.5, os.kill, (pid, signal.SIGKILL)).start()
        with pytest.raises(ReadError, match=r"reader process stopped \(killed by SIGKILL\)"):
            reader.read(files["slow.pdf"])
        assert reader.read(files["good.txt"]).chunks
    finally:
        reader.close()


def test_worker_runs_under_its_memory_limit(files: dict[str, FileEntry]) -> None:
    reader = IsolatedReader(config(max_mb=50), timeout=30.0)
    try:
        reader.read(files["good.txt"])
        limits = Path(f"/proc/{reader.pid}/limits").read_text()
    finally:
        reader.close()
    line = next(x for x in limits.splitlines() if x.startswith("Max address space"))
    assert line.split()[3:5] == [str(config(50).memory_limit)] * 2


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (MemoryError(), "ran out of memory while reading"),
        (RecursionError(), "too deeply nested to read"),
        (ValueError("bad\x1b[31m\nvalue"), "unexpected ValueError: bad[31m value"),
        (ReadError("PDF is encrypted"), "PDF is encrypted"),
    ],
)
def test_worker_turns_every_failure_into_one_line(
    files: dict[str, FileEntry], monkeypatch: pytest.MonkeyPatch, error: Exception, reason: str
) -> None:
    def fail(*_args: object) -> None:
        raise error

    monkeypatch.setattr(read_worker, "parse_document", fail)
    entry = files["good.txt"]
    frame = read_worker._reply(
        {"path": entry.path, "abspath": str(entry.abspath)},
        config().to_json(),
        lambda texts: [1 for _ in texts],
    )
    reply = read_worker.decode_frame(frame[read_worker.HEADER.size :])
    assert reply == {"ok": False, "reason": reason}


def test_worker_dies_with_its_parent(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("The lantern room.\n")
    script = (
        "import sys, time\n"
        "from askdoc.ingest.isolation import IsolatedReader, WorkerConfig\n"
        "from askdoc.ingest.chunking import ChunkSettings\n"
        "from askdoc.embedder import packaged_model_path\n"
        "from askdoc.tokens import TokenCounter\n"
        "from askdoc.ingest.readers import scan_corpus\n"
        f"entry = scan_corpus(__import__('pathlib').Path({str(tmp_path)!r}), 1 << 20)[0][0]\n"
        "tokens = TokenCounter.of_model(packaged_model_path())\n"
        "config = WorkerConfig(1 << 20, tokens, ChunkSettings())\n"
        "r = IsolatedReader(config, 9)\n"
        "r.read(entry)\n"
        "print(r.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'src'}")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())
    assert alive(worker)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 5
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(worker), "the reader process outlived its parent"


def test_one_worker_serves_consecutive_builds(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    settings = fake_settings(corpus, tmp_path / "index")
    pids = []
    for n in range(3):
        (corpus / f"doc{n}.txt").write_text(f"Document {n} about the observatory dome.\n")
        Engine(settings, FakeEmbedder()).build()
        pool = [r for readers in isolation._IDLE.values() for r in readers]
        pids.append({r.pid for r in pool})
    assert pids[0] and pids[0] == pids[1] == pids[2]
