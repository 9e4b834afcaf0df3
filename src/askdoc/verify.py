"""``askdoc verify``: check every file of an index and list each problem in one line."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from askdoc.errors import AskdocError
from askdoc.store import (
    DB_NAME,
    FAISS_PREFIX,
    FAISS_SUFFIX,
    connect,
    load_faiss_file,
    read_manifest,
    require_index,
)


def verify_index(index_dir: Path) -> list[str]:
    """Problems found (empty when the index is sound). Never modifies the index."""
    try:
        db = require_index(index_dir)
        conn = connect(db)
    except AskdocError as exc:
        return [str(exc)]
    try:
        return _verify(conn, index_dir)
    except sqlite3.DatabaseError as exc:
        return [f"{DB_NAME}: damaged database ({exc})"]
    finally:
        conn.close()


def _verify(conn: sqlite3.Connection, index_dir: Path) -> list[str]:
    problems: list[str] = []
    result = conn.execute("PRAGMA integrity_check").fetchone()[0]
    if result != "ok":
        problems.append(f"{DB_NAME}: integrity check failed ({result})")
        return problems
    try:
        manifest = read_manifest(conn, index_dir / DB_NAME)
    except AskdocError as exc:
        return [str(exc)]
    if manifest is None:
        return [f"{DB_NAME}: no manifest (the index was never completed)"]
    name = manifest.faiss_file
    if "/" in name or not (name.startswith(FAISS_PREFIX) and name.endswith(FAISS_SUFFIX)):
        return [f"{DB_NAME}: the manifest names an invalid file {name!r}"]
    try:
        index = load_faiss_file(index_dir / name, manifest.faiss_sha256)
        if index.ntotal != manifest.chunks:
            problems.append(f"{name}: {index.ntotal} vectors but {manifest.chunks} passages")
    except FileNotFoundError:
        problems.append(f"{name}: missing")
    except AskdocError as exc:
        problems.append(str(exc))
    problems.extend(_check_rows(conn, manifest.model.get("dimension", 0)))
    return problems


def _check_rows(conn: sqlite3.Connection, dimension: int) -> list[str]:
    problems: list[str] = []
    rows = conn.execute(
        'SELECT c.id, c.start, c."end", c.text, substr(d.text, c.start + 1, c."end" - c.start) '
        "FROM chunks c JOIN documents d ON d.id = c.doc_id"
    )
    bad = [cid for cid, _s, _e, text, expected in rows if text != expected]
    if bad:
        problems.append(f"{DB_NAME}: {len(bad)} passages differ from their document text")
    missing = conn.execute(
        "SELECT count(*) FROM chunks c LEFT JOIN vectors v ON v.hash = c.text_hash "
        "WHERE v.hash IS NULL"
    ).fetchone()[0]
    if missing:
        problems.append(f"{DB_NAME}: {missing} passages have no vector")
    wrong = conn.execute(
        "SELECT count(*) FROM vectors WHERE length(vector) != ?", (dimension * 4,)
    ).fetchone()[0]
    if wrong:
        problems.append(f"{DB_NAME}: {wrong} vectors have the wrong size")
    fts = conn.execute("INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('integrity-check', 1)")
    del fts
    return problems
