"""Files skipped while reading are remembered (size, mtime, sha256, reason): a build does not
read them again until they or the reading settings change, and ``askdoc status`` lists them as
skipped with their reasons, never as drift."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from askdoc.cli import main
from askdoc.config import Settings
from askdoc.engine import Engine
from askdoc.errors import TransientReadError
from askdoc.index.schema import DB_NAME
from askdoc.index.verify import verify_index
from askdoc.ingest.chunking import ChunkSettings
from askdoc.ingest.isolation import IsolatedReader, WorkerConfig, isolated_reader
from askdoc.ingest.readers import FileEntry
from tests.conftest import FakeEmbedder

SAMPLE = "north-korea-russia-alliance.txt"
BAD = {
    "binary.txt": b"\x00\x01\x02" * 100,
    "empty.md": b"",
    "broken.docx": b"PK\x03\x04 this is not a zip archive",
}


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The corpus paths handed to the reader process, in order."""
    seen: list[str] = []
    real = IsolatedReader.read

    def read(self: IsolatedReader, entry: FileEntry):  # type: ignore[no-untyped-def]
        seen.append(entry.path)
        return real(self, entry)

    monkeypatch.setattr(IsolatedReader, "read", read)
    return seen


@pytest.fixture
def fake_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("askdoc.engine.Embedder", lambda *_args, **_kwargs: FakeEmbedder())


def write_bad(corpus: Path) -> None:
    for name, data in BAD.items():
        (corpus / name).write_bytes(data)


def reasons_of(skipped: object) -> dict[str, str]:
    return {s.path: s.reason for s in skipped}  # type: ignore[attr-defined]


def test_skipped_files_are_not_read_again_until_they_change(
    settings: Settings, reads: list[str]
) -> None:
    write_bad(settings.corpus)
    engine = Engine(settings, FakeEmbedder())
    first = engine.build()
    reasons = reasons_of(first.skipped)
    assert sorted(reasons) == sorted(BAD) and "binary" in reasons["binary.txt"]
    assert sorted(reads) == sorted([*BAD, SAMPLE])

    reads.clear()
    again = engine.build()
    assert reads == [] and not again.changed  # nothing read again
    assert reasons_of(again.skipped) == reasons

    os.utime(settings.corpus / "binary.txt", (1_000_000, 1_000_000))  # touched, same bytes
    touched = engine.build()
    assert reads == [] and reasons_of(touched.skipped) == reasons
    assert not engine.status().drift.any

    (settings.corpus / "broken.docx").write_bytes(b"PK\x03\x04 still not a zip, but longer")
    changed = engine.build()
    assert reads == ["broken.docx"] and "broken.docx" in reasons_of(changed.skipped)

    reads.clear()
    (settings.corpus / "empty.md").write_text("# Kites\n\nKites fly best in steady wind.\n")
    fixed = engine.build()
    assert reads == ["empty.md"] and fixed.added == ("empty.md",)
    assert sorted(reasons_of(fixed.skipped)) == ["binary.txt", "broken.docx"]
    assert sorted(reasons_of(engine.status().skipped)) == ["binary.txt", "broken.docx"]

    (settings.corpus / "binary.txt").unlink()
    gone = engine.build()
    assert reasons_of(gone.skipped) == {"broken.docx": reasons["broken.docx"]}
    assert reasons_of(engine.status().skipped) == {"broken.docx": reasons["broken.docx"]}
    assert verify_index(settings.index) == []


def test_status_lists_skipped_files_with_reasons_not_as_drift(
    settings: Settings, fake_cli: None, capsys: pytest.CaptureFixture[str]
) -> None:
    write_bad(settings.corpus)
    with (settings.corpus / "huge.txt").open("wb") as handle:  # refused by the scan, from stat
        handle.truncate(60 << 20)
    report = Engine(settings, FakeEmbedder()).build()
    common = ["--corpus", str(settings.corpus), "--index", str(settings.index)]
    capsys.readouterr()
    assert main([*common, "status"]) == 0
    out = capsys.readouterr().out
    assert "the corpus changed" not in out and "added:" not in out
    assert "drift   none: the index matches the corpus" in out
    for skipped in report.skipped:
        assert f"  skipped: {settings.corpus / skipped.path}: {skipped.reason}\n" in out
    assert "huge.txt: larger than 50 MB" in out
    status = Engine(settings, FakeEmbedder()).status()
    assert reasons_of(status.skipped) == reasons_of(report.skipped)


def test_a_changed_file_that_became_unreadable_is_skipped_not_drift(
    settings: Settings, reads: list[str]
) -> None:
    engine = Engine(settings, FakeEmbedder())
    engine.build()
    (settings.corpus / SAMPLE).write_bytes(b"\x00" * 500)
    first = engine.build()
    assert reasons_of(first.skipped) == {SAMPLE: "binary file (NUL bytes)"}
    status = engine.status()
    assert not status.drift.any and reasons_of(status.skipped) == reasons_of(first.skipped)
    reads.clear()
    again = engine.build()
    assert reads == [] and reasons_of(again.skipped) == reasons_of(first.skipped)
    assert again.documents == 1  # the last readable version stays indexed
    assert verify_index(settings.index) == []


def test_skipped_files_are_read_again_when_reading_settings_change_or_full(
    settings: Settings, reads: list[str]
) -> None:
    line = "river stone lamp field " * 1_000  # 23,000 characters on one line
    (settings.corpus / "long.txt").write_text(line)
    narrow = replace(settings, max_line_chars=10_000)
    first = Engine(narrow, FakeEmbedder()).build()
    assert "max_line_chars = 10,000" in reasons_of(first.skipped)["long.txt"]
    reads.clear()
    Engine(narrow, FakeEmbedder()).build()
    assert reads == []
    Engine(narrow, FakeEmbedder()).build(full=True)
    assert reads == ["long.txt", SAMPLE]  # --full reads every file again
    reads.clear()
    wide = Engine(replace(settings, max_line_chars=100_000), FakeEmbedder()).build()
    assert reads == ["long.txt"] and wide.added == ("long.txt",) and not wide.skipped


def test_a_file_that_could_not_be_opened_is_retried_not_remembered(settings: Settings) -> None:
    config = WorkerConfig(1 << 20, FakeEmbedder().tokens, ChunkSettings())
    gone = FileEntry("gone.txt", settings.corpus / "gone.txt", 10, 0.0)
    with isolated_reader(config, 30.0) as reader, pytest.raises(TransientReadError):
        reader.read(gone)


def test_a_damaged_skipped_file_row_is_reported_and_the_file_read_again(
    settings: Settings, reads: list[str]
) -> None:
    write_bad(settings.corpus)
    engine = Engine(settings, FakeEmbedder())
    engine.build()
    conn = sqlite3.connect(settings.index / DB_NAME)
    conn.execute("UPDATE skipped_files SET reason = 'fine' WHERE path = 'binary.txt'")
    conn.commit()
    conn.close()
    assert verify_index(settings.index) == [
        f"{DB_NAME}: 1 remembered skipped files fail their checksum (read again next)"
    ]
    reads.clear()
    report = engine.build()
    assert reads == ["binary.txt"] and "binary" in reasons_of(report.skipped)["binary.txt"]
    assert verify_index(settings.index) == []
