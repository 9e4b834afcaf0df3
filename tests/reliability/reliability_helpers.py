"""Shared by the reliability tests: scale (CI vs ``make reliability``), figures, settings for the
fake embedder, the subprocess index runner, and views of an index's state."""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from askdoc.config import Settings
from askdoc.index.reader import IndexReader
from askdoc.index.schema import DB_NAME
from askdoc.index.writer import chunking_settings, model_manifest
from tests.conftest import FakeEmbedder

FULL = os.environ.get("ASKDOC_RELIABILITY_FULL") == "1"
"""``make reliability`` sets ASKDOC_RELIABILITY_FULL=1: the long versions, figures printed."""
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RUNNER = HERE / "index_runner.py"

WORDS = (
    "river valley treaty harbour lantern granite orchard meadow copper signal archive beacon "
    "festival glacier compass merchant quarry vineyard bridge canyon monsoon tundra volcano "
    "lagoon prairie citadel monastery aqueduct observatory parliament railway telegraph"
).split()


def scaled(ci: int, full: int) -> int:
    """How many cases: ``ci`` in ``make test``, ``full`` in ``make reliability``."""
    return full if FULL else ci


def figure(title: str, **values: Any) -> None:
    """Print one measured figure (shown by ``make reliability``, which runs pytest -s)."""
    shown = ", ".join(f"{k}={v}" for k, v in values.items())
    print(f"\n[reliability] {title}: {shown}", flush=True)


def fake_settings(corpus: Path, index: Path, **overrides: Any) -> Settings:
    return replace(Settings(), corpus=corpus, index=index, **overrides)


def fake_identity(settings: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model, chunking) manifests the fake embedder builds with, to open a reader."""
    embedder = FakeEmbedder()
    return model_manifest(embedder), chunking_settings(settings, embedder)


def open_reader(settings: Settings, repair: bool = False) -> IndexReader:
    model, chunking = fake_identity(settings)
    return IndexReader(settings.index, model, chunking, repair=repair)


@dataclass(frozen=True)
class IndexState:
    """What an index holds, as comparable facts."""

    generation: int
    documents: dict[str, str]  # path -> sha256 of the file
    chunks: int


def index_state(settings: Settings) -> IndexState:
    """The published state, read through IndexReader (no repair: it must load as it is)."""
    reader = open_reader(settings)
    try:
        with reader.snapshot() as manifest:
            docs = {p: r.sha256 for p, r in reader.documents().items()}
            return IndexState(manifest.generation, docs, manifest.chunks)
    finally:
        reader.close()


def corpus_hashes(corpus: Path) -> dict[str, str]:
    """sha256 of every supported file in a flat test corpus."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(corpus.iterdir())
        if p.is_file() and p.suffix in (".txt", ".md")
    }


def paragraph(rng: random.Random, marker: str, words: int = 60) -> str:
    body = " ".join(rng.choice(WORDS) for _ in range(words))
    return f"{marker} {body}."


def runner_command(corpus: Path, index: Path, *extra: str) -> list[str]:
    return [sys.executable, str(RUNNER), "--corpus", str(corpus), "--index", str(index), *extra]


def runner_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **extra})
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "src"), env.get("PYTHONPATH", "")])
    return env


def run_runner(corpus: Path, index: Path, *extra: str, timeout: float = 120) -> dict[str, Any]:
    """One build in a subprocess with the fake embedder; its JSON report."""
    done = subprocess.run(
        runner_command(corpus, index, *extra),
        env=runner_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def table_dump(db_path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (FTS shadow tables included), for byte-exact comparison."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'chunks_fts' "
                "ORDER BY name"
            )
        ]
        return {n: conn.execute(f'SELECT * FROM "{n}" ORDER BY 1').fetchall() for n in names}
    finally:
        conn.close()


def leftovers(index: Path) -> list[str]:
    """Files in index/ other than the database, the lock and FAISS files."""
    allowed = {DB_NAME, ".lock"}
    return sorted(
        p.name
        for p in index.iterdir()
        if p.name not in allowed and not (p.name.startswith("vectors-") and p.suffix == ".faiss")
    )
