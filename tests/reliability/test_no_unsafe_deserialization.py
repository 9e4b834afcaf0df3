"""Promise 8: nothing in index/ is ever unpickled.

Planted files -- a pickle, an object-array ``.npy``, a pickle in place of the FAISS file, a
manifest naming a pickle -- never execute. Defined behaviour: files askdoc does not know are
never opened (the index still answers) and ``askdoc verify`` reports them; a manifest naming
anything but ``vectors-<n>.faiss`` makes the index invalid (IndexCorruptError); a FAISS file that
is not one fails in FAISS's own reader (no unpickling); the reader builds the index in memory from
the stored vectors instead.
And a source scan: no deserializer that can run code is used anywhere in src/.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from reliability_helpers import REPO, fake_identity, fake_settings

from askdoc.config import Settings
from askdoc.engine import Engine
from askdoc.errors import IndexCorruptError
from askdoc.index.manifest import manifest_checksum
from askdoc.index.reader import IndexReader
from askdoc.index.schema import DB_NAME
from askdoc.index.vectors import sha256_file
from askdoc.index.verify import verify_index
from tests.conftest import SAMPLE_CORPUS, FakeEmbedder

QUESTION = "Who signed the strategic partnership agreement?"
UNSAFE = [
    r"\b(pickle|cPickle|_pickle|joblib|dill|shelve|cloudpickle)\b",
    r"allow_pickle\s*=\s*True",
    r"torch\.load\b",
    r"marshal\.loads?\b",
    r"numpy\.load\b.*allow_pickle",
]


def pickle_bomb(marker: Path) -> bytes:
    """A protocol-0 pickle that runs ``touch marker`` when unpickled."""
    return b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."


class Toucher:
    """Pickled inside an object array: unpickling it creates the marker."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (str(self.marker),))  # type: ignore[return-value]


@pytest.fixture
def built(tmp_path: Path) -> Settings:
    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLE_CORPUS, corpus)
    settings = fake_settings(corpus, tmp_path / "index", exact_below=0)  # with a FAISS file
    Engine(settings, FakeEmbedder()).build()
    return settings


def unpickles(path: Path) -> None:
    """Control: a process that does unpickle ``path`` (so the payload is known to be live)."""
    code = (
        "import sys, numpy\n"
        "p = sys.argv[1]\n"
        "if p.endswith('.npy'):\n"
        "    numpy.load(p, allow_pickle=True)\n"
        "else:\n"
        "    __import__('pick' + 'le').loads(open(p, 'rb').read())\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, cwd=REPO)


def set_manifest(settings: Settings, **changes: object) -> None:
    """Rewrite the manifest as an attacker with write access would (checksum included)."""
    conn = sqlite3.connect(settings.index / DB_NAME)
    raw = json.loads(conn.execute("SELECT value FROM meta WHERE key = 'manifest'").fetchone()[0])
    raw.update(changes)
    text = json.dumps(raw, sort_keys=True)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'manifest'", (text,))
    conn.execute(
        "UPDATE meta SET value = ? WHERE key = 'manifest_sha256'", (manifest_checksum(text),)
    )
    conn.commit()
    conn.close()


def test_planted_files_are_never_opened(built: Settings, tmp_path: Path) -> None:
    marker, control = tmp_path / "pwned", tmp_path / "control"
    index = built.index
    (index / "vectors.pkl").write_bytes(pickle_bomb(marker))
    (index / "index.pkl").write_bytes(pickle_bomb(marker))
    np.save(index / "vectors.npy", np.array([Toucher(marker)], dtype=object), allow_pickle=True)
    shutil.copy(index / "vectors.npy", tmp_path / "control.npy")
    assert Engine(built, FakeEmbedder()).ask(QUESTION).sources
    problems = verify_index(index)
    assert not marker.exists()
    for name in ("index.pkl", "vectors.npy", "vectors.pkl"):
        assert f"{name}: unexpected file (askdoc never reads it; remove it)" in problems
    (tmp_path / "control.pkl").write_bytes(pickle_bomb(control))
    unpickles(tmp_path / "control.pkl")
    assert control.exists(), "control: the pickle payload is live"
    control.unlink()
    np.save(tmp_path / "control.npy", np.array([Toucher(control)], dtype=object), allow_pickle=True)
    unpickles(tmp_path / "control.npy")
    assert control.exists(), "control: the .npy payload is live"


@pytest.mark.parametrize("name", ["vectors.pkl", "../vectors.pkl", "/tmp/x.pkl", "vectors-1.npy"])
def test_manifest_naming_a_pickle_is_invalid(built: Settings, tmp_path: Path, name: str) -> None:
    marker = tmp_path / "pwned"
    (built.index / "vectors.pkl").write_bytes(pickle_bomb(marker))
    set_manifest(built, faiss_file=name)
    with pytest.raises(IndexCorruptError, match="the manifest names an invalid file"):
        IndexReader(built.index, *fake_identity(built))
    with pytest.raises(IndexCorruptError):
        Engine(built, FakeEmbedder()).ask(QUESTION)
    assert any("invalid file" in p for p in verify_index(built.index))
    assert not marker.exists()


def test_a_pickle_in_place_of_the_faiss_file_never_runs(built: Settings, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    faiss_file = next(built.index.glob("vectors-*.faiss"))
    faiss_file.write_bytes(pickle_bomb(marker))
    set_manifest(built, faiss_sha256=sha256_file(faiss_file))  # even with a matching checksum
    with pytest.raises(IndexCorruptError, match="unreadable FAISS file"):
        IndexReader(built.index, *fake_identity(built), repair=False)
    assert Engine(built, FakeEmbedder()).ask(QUESTION).sources  # built in memory from vectors
    assert not marker.exists()


def test_no_unsafe_deserializer_in_src() -> None:
    found = []
    for path in sorted((REPO / "src").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for pattern in UNSAFE:
                if re.search(pattern, line):
                    found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert found == []
