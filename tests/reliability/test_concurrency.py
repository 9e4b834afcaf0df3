"""Promise 5: concurrency. A second ``askdoc index`` exits at once with a clear message, or waits
with ``--wait``; a reader running through 20 rebuilds made by another process never fails and
never sees two index versions mixed in one snapshot."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from index_runner import rewrite
from reliability_helpers import (
    fake_settings,
    figure,
    open_reader,
    run_runner,
    runner_command,
    runner_env,
    scaled,
)

from askdoc.engine import Engine
from askdoc.index.reader import IndexReader
from askdoc.text import build_fts_query
from tests.conftest import FakeEmbedder

VERSION = re.compile(r"marker v(\d+)\.")


def cli(corpus: Path, index: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "askdoc", "--corpus", str(corpus), "--index", str(index), *args]


def wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def make_corpus(root: Path, docs: int = 8) -> Path:
    root.mkdir()
    for n in range(docs):
        (root / f"topic{n}.txt").write_text("placeholder\n")
    rewrite(root, 0)
    return root


def test_second_writer_exits_at_once_and_wait_waits(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    index = tmp_path / "index"
    hold = tmp_path / "release"
    holder = subprocess.Popen(
        runner_command(corpus, index, "--hold", str(hold)),
        env=runner_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(Path(f"{hold}.locked"))
        started = time.perf_counter()
        second = subprocess.run(
            cli(corpus, index, "index"), env=runner_env(), capture_output=True, text=True
        )
        refused_after = time.perf_counter() - started
        assert second.returncode == 1
        assert "another `askdoc index` is already building" in second.stderr
        assert "--wait" in second.stderr and second.stderr.count("\n") == 1
        assert refused_after < 10  # about 1 s here, nearly all of it Python start-up

        waiting = subprocess.Popen(
            cli(corpus, index, "index", "--wait", "--dry-run"),
            env=runner_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(2.0)
        assert waiting.poll() is None, "--wait did not wait for the running build"
        hold.touch()
        out, err = holder.communicate(timeout=120)
        assert holder.returncode == 0, err
        holder_done = json.loads(out.splitlines()[-1])["finished_at"]
        w_out, w_err = waiting.communicate(timeout=120)
        waited_done = time.time()
        assert waiting.returncode == 0, w_err
        assert "Would index" in w_out and waited_done >= holder_done
    finally:
        hold.touch()
        for proc in (holder,):
            if proc.poll() is None:
                proc.kill()
    figure("second writer", refused_after_s=round(refused_after, 2), exit_code=1)


def snapshot_versions(reader: IndexReader, vector: object, query: str) -> tuple[int, set[int]]:
    """Inside one snapshot: the generation and the versions of every passage found."""
    with reader.snapshot() as manifest:
        ids = [cid for cid, _ in reader.dense(vector, 10)]  # type: ignore[arg-type]
        ids += [cid for cid, _ in reader.lexical(query, 10)]
        chunks = reader.chunks(ids)
        assert chunks, "a search found nothing"
        return manifest.generation, {int(VERSION.findall(c.chunk.text)[0]) for c in chunks.values()}


@pytest.mark.timeout(1800)
def test_reader_never_fails_nor_mixes_versions_during_rebuilds(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    settings = fake_settings(corpus, tmp_path / "index")
    first = run_runner(corpus, settings.index)
    rebuilds = scaled(ci=20, full=60)
    embedder = FakeEmbedder()
    vector = embedder.encode_query("edition describes topic paragraph")
    query = build_fts_query("edition describes marker")
    log, errors = tmp_path / "rebuilds.jsonl", tmp_path / "rebuilds.err"
    with log.open("w") as out, errors.open("w") as err:  # files: a full pipe would block it
        writer = subprocess.Popen(
            runner_command(corpus, settings.index, "--rebuilds", str(rebuilds)),
            env=runner_env(),
            stdout=out,
            stderr=err,
        )
    seen: dict[int, set[int]] = {}
    failures: list[str] = []
    reads = opens = asks = 0
    reader = open_reader(settings)
    engine = Engine(settings, FakeEmbedder())
    try:
        while writer.poll() is None:
            reads += 1
            try:
                if reads % 20 == 0:  # a fresh reader: the load path races the publisher too
                    reader.close()
                    reader = open_reader(settings)
                    opens += 1
                generation, versions = snapshot_versions(reader, vector, query)
                seen.setdefault(generation, set()).update(versions)
                if reads % 10 == 0:
                    assert engine.ask("What does the edition describe?").sources
                    asks += 1
            except Exception as exc:  # every failure is counted and shown, none is hidden
                failures.append(f"{type(exc).__name__}: {exc}")
    finally:
        reader.close()
        engine.close()
    writer.wait(timeout=60)
    assert writer.returncode == 0, errors.read_text()[-3000:]
    published = {first["generation"]: 0}
    for line in log.read_text().splitlines():
        build = json.loads(line)
        published[build["generation"]] = build["version"]
    assert failures == []
    for generation, versions in seen.items():
        assert versions == {published[generation]}, f"generation {generation} mixed {versions}"
    assert len(seen) >= 3 and reads >= 50
    figure(
        "reader during rebuilds",
        rebuilds=rebuilds,
        snapshots=reads,
        fresh_readers=opens,
        asks=asks,
        generations_seen=len(seen),
        failures=len(failures),
        mixed=0,
    )
