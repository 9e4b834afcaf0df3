"""Leftovers of a failed build: a build that fails (here: on a full disk) may leave a FAISS file
no generation references, a temporary file, a write-ahead log. ``askdoc verify`` names them
(they are not damage: exit 0), the next build removes them and says so, and ``askdoc verify
--repair`` removes them (merging the WAL into the database) and says what it removed."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest
from reliability_helpers import (
    fake_settings,
    figure,
    index_state,
    leftovers,
    runner_command,
    runner_env,
)

from askdoc.cli import main
from askdoc.config import Settings
from askdoc.engine import Engine
from askdoc.errors import AskdocError
from askdoc.index import publish as generations
from askdoc.index import vectors as store
from askdoc.index.schema import DB_NAME
from askdoc.index.verify import verify_index
from tests.conftest import SAMPLE_CORPUS, FakeEmbedder

NEW = "A new file about lighthouses: the Varn light burns whale oil.\n"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLE_CORPUS, corpus)
    # approximate (IVF) generations: since index format 4 only they have a FAISS file to leave
    return fake_settings(corpus, tmp_path / "index", exact_below=0)


@pytest.fixture
def fake_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("askdoc.engine.Embedder", lambda *_args, **_kwargs: FakeEmbedder())
    monkeypatch.setenv("ASKDOC_EXACT_BELOW", "0")  # as the settings fixture: with a FAISS file


def disk_full() -> sqlite3.OperationalError:
    """The error SQLite raises when the disk is full (SQLITE_FULL)."""
    error = sqlite3.OperationalError("database or disk is full")
    error.sqlite_errorcode = 13  # type: ignore[attr-defined]
    error.sqlite_errorname = "SQLITE_FULL"  # type: ignore[attr-defined]
    return error


def cli(settings: Settings, *args: str) -> list[str]:
    return ["--corpus", str(settings.corpus), "--index", str(settings.index), *args]


def test_a_commit_failing_on_a_full_disk_leaves_a_file_the_next_build_removes(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    first = Engine(settings, FakeEmbedder()).build()
    (settings.corpus / "lighthouse.txt").write_text(NEW)

    def full(*args: object, **kwargs: object) -> None:
        raise disk_full()  # the FAISS file of generation 2 is written, the commit fails

    monkeypatch.setattr(generations, "write_manifest", full)
    with pytest.raises(AskdocError, match="database or disk is full$"):
        Engine(settings, FakeEmbedder()).build()
    monkeypatch.undo()
    assert index_state(settings).generation == first.generation  # the last commit holds
    orphan = store.faiss_name(first.generation + 1)
    assert leftovers(settings.index) == [] and (settings.index / orphan).is_file()
    assert verify_index(settings.index) == []  # not damage ...

    monkeypatch.setattr("askdoc.engine.Embedder", lambda *_args, **_kwargs: FakeEmbedder())
    capsys.readouterr()
    assert main(cli(settings, "verify")) == 0  # ... but named
    out = capsys.readouterr().out
    assert f"note: {orphan}: left by a failed build (no generation uses it); " in out
    assert "`askdoc verify --repair` removes it" in out

    report = Engine(settings, FakeEmbedder()).build()
    assert f"removed {orphan}: left by a failed build" in report.notes
    assert report.added == ("lighthouse.txt",) and verify_index(settings.index) == []


def test_a_full_disk_while_writing_the_faiss_file_is_one_line_and_repair_removes_the_temp_file(
    settings: Settings,
    fake_cli: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(cli(settings, "index")) == 0
    (settings.corpus / "lighthouse.txt").write_text(NEW)
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if ".tmp-" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    capsys.readouterr()
    assert main(cli(settings, "index")) == 1
    err = capsys.readouterr().err
    assert err.startswith("askdoc: ") and err.count("\n") == 1 and "Traceback" not in err
    assert "No space left on device" in err
    monkeypatch.setattr(os, "fsync", real_fsync)
    temp = leftovers(settings.index)
    assert len(temp) == 1 and ".tmp-" in temp[0]

    assert main(cli(settings, "verify", "--repair")) == 0
    out = capsys.readouterr().out
    assert f"removed {temp[0]}: left by a failed build" in out and f"{settings.index}: ok" in out
    assert leftovers(settings.index) == []
    assert main(cli(settings, "verify")) == 0
    assert "note:" not in capsys.readouterr().out


def test_verify_repair_merges_the_write_ahead_log_of_a_killed_build(
    settings: Settings, fake_cli: None, capsys: pytest.CaptureFixture[str]
) -> None:
    Engine(settings, FakeEmbedder()).build()
    (settings.corpus / "lighthouse.txt").write_text(NEW)
    done = subprocess.run(  # killed just after its commit: the WAL holds the new generation
        runner_command(settings.corpus, settings.index),
        env=runner_env(ASKDOC_TEST_KILL_AT="commit:before:1"),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL
    wal = settings.index / f"{DB_NAME}-wal"
    assert wal.stat().st_size > 0
    capsys.readouterr()
    assert main(cli(settings, "verify", "--repair")) == 0
    out = capsys.readouterr().out
    assert f"merged {DB_NAME}-wal (" in out and "into askdoc.sqlite3" in out
    assert not wal.exists() or wal.stat().st_size == 0
    assert "lighthouse.txt" in index_state(settings).documents
    said = out.replace(f"{settings.index}: ", "").strip().splitlines()
    figure("verify --repair after a kill", said=" | ".join(said))
