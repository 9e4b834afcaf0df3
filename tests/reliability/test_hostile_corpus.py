"""Promise 3: a hostile corpus gives no crash, no hang, each bad file skipped with a reason, the
good files indexed exactly as in a clean run, and no byte from outside the corpus in the index.

The corpus holds more than 25 kinds of bad input (hostile_files.py): undecodable and binary
text, empty files, NUL bytes, a 100 MB single line, a sparse file over the size cap, a very long
line, symlinks leaving the corpus (file, folder, /etc/passwd, /dev/zero), a symlink loop, a
dangling link, a FIFO, a file growing while it is read, encrypted / truncated / random /
compression-bomb / cyclic / pathologically slow PDFs, script-filled HTML, deeply nested HTML, a
malformed .docx, a .docx zip bomb, a zip that is not a Word file, a folder 120 levels deep, and
names holding a newline or bytes that are not UTF-8.
"""

from __future__ import annotations

import hashlib
import random
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from hostile_files import OUTSIDE_MARKER, write_good, write_hostile
from reliability_helpers import fake_settings, figure

from askdoc.engine import Engine
from askdoc.index.schema import DB_NAME
from askdoc.index.verify import verify_index
from tests.conftest import FakeEmbedder

FILE_TIMEOUT = 5.0


def rows_by_path(index: Path) -> dict[str, tuple[Any, ...]]:
    """Each document's stored content and passages, keyed by path (ids differ between runs)."""
    conn = sqlite3.connect(index / DB_NAME)
    try:
        out: dict[str, tuple[Any, ...]] = {}
        for doc_id, path, *content in conn.execute(
            "SELECT id, path, sha256, kind, text, headings, page_starts, notes, content_sha256 "
            "FROM documents"
        ):
            chunks = conn.execute(
                'SELECT ordinal, start, "end", line_start, line_end, page, heading, text, '
                "text_hash FROM chunks WHERE doc_id = ? ORDER BY ordinal",
                (doc_id,),
            ).fetchall()
            out[path] = (*content, chunks)
        return out
    finally:
        conn.close()


def grow(path: Path, stop: threading.Event) -> None:
    """Append to ``path`` until told to stop: a file changing while the build reads it."""
    n = 0
    while not stop.is_set():
        n += 1
        with path.open("a", encoding="utf-8") as handle:
            handle.write(f"Entry {n}: the harbour crane moved {n % 7} crates.\n")
        time.sleep(0.001)


def test_hostile_corpus(tmp_path: Path) -> None:
    clean = tmp_path / "clean"
    clean.mkdir()
    write_good(clean)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    good = write_good(corpus)
    cases = write_hostile(corpus, tmp_path / "outside", random.Random(5))
    clean_settings = fake_settings(clean, tmp_path / "clean-index")
    settings = fake_settings(corpus, tmp_path / "index", file_timeout=FILE_TIMEOUT)
    assert not Engine(clean_settings, FakeEmbedder()).build().skipped

    stop = threading.Event()
    grower = threading.Thread(target=grow, args=(corpus / "changing.txt", stop))
    grower.start()
    started = time.perf_counter()
    try:
        report = Engine(settings, FakeEmbedder()).build()
    finally:
        stop.set()
        grower.join()
    seconds = time.perf_counter() - started

    reasons = {s.path: s.reason for s in report.skipped}
    stored = rows_by_path(settings.index)
    for case in cases:
        if case.expect == "index" or (case.expect == "either" and case.path in stored):
            assert case.path in stored, f"{case.path}: {reasons.get(case.path)}"
            assert case.path not in reasons
        else:
            assert case.path in reasons, f"{case.path} was neither indexed nor skipped"
            assert re.search(case.reasons, reasons[case.path]), (case.path, reasons[case.path])
    assert "\n" not in "".join(reasons) + "".join(reasons.values())
    assert {s.path for s in report.skipped} <= {c.path for c in cases}
    assert ".hidden.txt" not in stored and "tool.exe" not in stored

    clean_rows = rows_by_path(clean_settings.index)
    assert sorted(clean_rows) == sorted(good)
    for path in good:
        assert stored[path] == clean_rows[path], f"{path} differs from the clean run"
    for path, row in stored.items():
        text = row[2]
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", text), path
        assert "LEAK" not in text, path

    for file in settings.index.iterdir():
        data = file.read_bytes() if file.is_file() else b""
        for secret in (OUTSIDE_MARKER.encode(), b"zqx7f3a", b"root:x:0:0", b"HIDDEN-MARKER"):
            assert secret not in data, f"{secret!r} from outside the corpus is in {file.name}"

    final = (corpus / "changing.txt").read_bytes()
    if "changing.txt" in stored:  # what was indexed is exactly one prefix of the growing file
        conn = sqlite3.connect(settings.index / DB_NAME)
        size, sha = conn.execute(
            "SELECT size, sha256 FROM documents WHERE path = 'changing.txt'"
        ).fetchone()
        conn.close()
        assert hashlib.sha256(final[:size]).hexdigest() == sha
    again = Engine(settings, FakeEmbedder()).build()
    assert set(again.updated) <= {"changing.txt"} and not again.added and not again.removed
    assert verify_index(settings.index) == []

    timed_out = sorted(p for p, r in reasons.items() if "took longer" in r)
    figure(
        "hostile corpus",
        bad_inputs=len(cases),
        skipped=len(reasons),
        indexed_good=len(good),
        timed_out=",".join(timed_out),
        build_s=round(seconds, 1),
        file_timeout_s=FILE_TIMEOUT,
    )
    for case in cases:
        outcome = f"skipped: {reasons[case.path]}" if case.path in reasons else "indexed"
        figure("  hostile input", path=case.path, outcome=outcome)
