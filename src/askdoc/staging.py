"""The indexer's SQL: open (or replace) the database, stage documents, embed what is missing
group by group, promote staged rows into the live tables. Memory stays bounded by one document
and one embedding group: passages waiting for a vector wait in a temporary table."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from askdoc.errors import IndexCorruptError
from askdoc.ingest import FileEntry
from askdoc.integrity import database_errors, skipped_row_sha256, vector_sha256
from askdoc.store import (
    FORMAT_VERSION,
    SCHEMA,
    SkippedRecord,
    connect,
    encode_document,
    read_manifest,
    text_hash,
    transaction,
)
from askdoc.types import Chunk, Document

EMBED_GROUP = 4096
"""Passages embedded (sorted by length) and committed together; a killed build resumes from here."""


def open_database(
    db_path: Path, full: bool, dry_run: bool, notes: list[str]
) -> tuple[sqlite3.Connection, bool]:
    """Open the database under the write lock; returns it and whether the build must be full.
    One of another index format is replaced; a damaged one is replaced with ``full`` and refused
    (naming the fix) without. ``full`` also runs SQLite's quick check first."""
    conn: sqlite3.Connection | None = None
    try:
        conn = connect(db_path)
        with database_errors(db_path):
            old = read_manifest(conn, db_path)
            if old is not None and old.format_version != FORMAT_VERSION:
                if dry_run:
                    return conn, True
                notes.append(f"index format {old.format_version} replaced by {FORMAT_VERSION}")
                conn.close()
                return _fresh(db_path), True
            if full and not dry_run:
                check = conn.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    raise IndexCorruptError(f"{db_path}: damaged database ({check})")
            conn.executescript(f"BEGIN IMMEDIATE;\n{SCHEMA}\nCOMMIT;")
        return conn, full
    except IndexCorruptError:
        if conn is not None:
            conn.close()
        if not full or dry_run:
            raise
        notes.append("the damaged index was replaced by a fresh one")
        return _fresh(db_path), True


def _fresh(db_path: Path) -> sqlite3.Connection:
    """Delete the database (and its WAL) and start an empty one: the corpus is the source."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    conn = connect(db_path)
    conn.executescript(f"BEGIN IMMEDIATE;\n{SCHEMA}\nCOMMIT;")
    return conn


def stage_document(
    conn: sqlite3.Connection,
    entry: FileEntry,
    digest: str,
    document: Document,
    chunks: list[Chunk],
    salt: str,
) -> None:
    """Keep a read document and its passage layout until the build publishes (own commit)."""
    rows = [
        [
            c.ordinal,
            c.start,
            c.end,
            c.line_start,
            c.line_end,
            c.page,
            c.heading,
            text_hash(salt + c.embed_text()),
        ]
        for c in chunks
    ]
    fields = encode_document(document)
    with transaction(conn):
        conn.execute(
            "INSERT OR REPLACE INTO staged_documents(path, size, mtime, sha256, kind, text, "
            "headings, page_starts, notes, chunks) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.path,
                entry.size,
                entry.mtime,
                digest,
                document.kind,
                document.text,
                fields["headings"],
                fields["page_starts"],
                fields["notes"],
                json.dumps(rows),
            ),
        )


def _staged_paths(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT path FROM staged_documents ORDER BY path")]


def _passages(conn: sqlite3.Connection, path: str) -> Iterator[tuple[str, str, int]]:
    """(hash, text to embed, where the passage body starts in it) of one staged document's
    passages (the heading line comes first, as context)."""
    text, raw = conn.execute(
        "SELECT text, chunks FROM staged_documents WHERE path = ?", (path,)
    ).fetchone()
    for _ordinal, start, end, _ls, _le, _page, heading, digest in json.loads(raw):
        body = text[start:end]
        yield (
            digest,
            (f"{heading}\n{body}" if heading else body),
            len(heading) + 1 if heading else 0,
        )


def collect_pending(conn: sqlite3.Connection, refresh: bool) -> int:
    """Fill ``temp.pending`` with each distinct staged passage lacking a stored vector (every one
    when ``refresh``), one document at a time; returns how many there are."""
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS pending(hash TEXT PRIMARY KEY, text TEXT, body INTEGER)"
    )
    conn.execute("DELETE FROM temp.pending")
    for path in _staged_paths(conn):
        conn.executemany(
            "INSERT OR IGNORE INTO temp.pending(hash, text, body) VALUES (?, ?, ?)",
            _passages(conn, path),
        )
    if not refresh:
        conn.execute("DELETE FROM temp.pending WHERE hash IN (SELECT hash FROM main.vectors)")
    return int(conn.execute("SELECT count(*) FROM temp.pending").fetchone()[0])


def pending_groups(conn: sqlite3.Connection) -> Iterator[list[tuple[str, str, int]]]:
    """``temp.pending`` in groups of EMBED_GROUP (hash, text, body start), in insertion order."""
    last = 0
    while True:
        rows = conn.execute(
            "SELECT rowid, hash, text, body FROM temp.pending WHERE rowid > ? "
            "ORDER BY rowid LIMIT ?",
            (last, EMBED_GROUP),
        ).fetchall()
        if not rows:
            conn.execute("DELETE FROM temp.pending")
            return
        last = rows[-1][0]
        yield [(h, t, b) for _, h, t, b in rows]


def store_vectors(
    conn: sqlite3.Connection, hashes: list[str], vectors: np.ndarray, sentences: list[bytes]
) -> None:
    """Store one group of passage vectors and sentence-vector blobs (``sentence_vectors.pack``,
    spans relative to the passage body) with their checksums, in one commit of its own: a
    killed build keeps them."""
    data = np.ascontiguousarray(vectors, dtype=np.float32)
    rows = []
    for i, key in enumerate(hashes):
        blob = data[i].tobytes()
        rows.append((key, blob, vector_sha256(key, blob)))
    pooled = [
        (key, blob, vector_sha256(key, blob)) for key, blob in zip(hashes, sentences, strict=True)
    ]
    with transaction(conn):
        conn.executemany(
            "INSERT OR REPLACE INTO vectors(hash, vector, sha256) VALUES (?, ?, ?)", rows
        )
        conn.executemany(
            "INSERT OR REPLACE INTO sentences(hash, data, sha256) VALUES (?, ?, ?)", pooled
        )


def touch(conn: sqlite3.Connection, entries: list[FileEntry]) -> None:
    """New size and mtime for files whose content did not change (their rows get resealed)."""
    conn.executemany(
        "UPDATE documents SET size = ?, mtime = ?, row_sha256 = '' WHERE path = ?",
        [(e.size, e.mtime, e.path) for e in entries],
    )


def rename(conn: sqlite3.Connection, old_path: str, entry: FileEntry) -> None:
    conn.execute(
        "UPDATE documents SET path = ?, size = ?, mtime = ?, row_sha256 = '' WHERE path = ?",
        (entry.path, entry.size, entry.mtime, old_path),
    )


def delete_document(conn: sqlite3.Connection, path: str) -> None:
    conn.execute(
        "DELETE FROM chunks WHERE doc_id IN (SELECT id FROM documents WHERE path = ?)", (path,)
    )
    conn.execute("DELETE FROM documents WHERE path = ?", (path,))


def promote_staged(conn: sqlite3.Connection) -> None:
    """Move staged documents and their passages into the live tables, one at a time."""
    for path in _staged_paths(conn):
        size, mtime, digest, kind, text, headings, pages, notes, raw = conn.execute(
            "SELECT size, mtime, sha256, kind, text, headings, page_starts, notes, chunks "
            "FROM staged_documents WHERE path = ?",
            (path,),
        ).fetchone()
        cursor = conn.execute(
            "INSERT INTO documents(path, size, mtime, sha256, kind, text, headings, page_starts, "
            "notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (path, size, mtime, digest, kind, text, headings, pages, notes),
        )
        doc_id = cursor.lastrowid
        conn.executemany(
            'INSERT INTO chunks(doc_id, ordinal, start, "end", line_start, line_end, page, '
            "heading, text, text_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (doc_id, o, s, e, ls, le, pg, hd, text[s:e], h)
                for o, s, e, ls, le, pg, hd, h in json.loads(raw)
            ],
        )
    conn.execute("DELETE FROM staged_documents")


def keep_skips(
    conn: sqlite3.Connection, records: dict[str, SkippedRecord], forget: bool = True
) -> None:
    """Remember these skipped files (path -> record, with their checksums) in one commit; with
    ``forget``, forget every other one (removed, now readable, or refused by the scan)."""
    rows = [
        (r.path, r.size, r.mtime, r.sha256, r.reason, r.reader)
        for r in sorted(records.values(), key=lambda r: r.path)
    ]
    stored = conn.execute(
        "SELECT path, size, mtime, sha256, reason, reader, row_sha256 FROM skipped_files"
    ).fetchall()
    if forget and sorted(stored) == [(*row, skipped_row_sha256(*row)) for row in rows]:
        return  # nothing changed: no write
    with transaction(conn):
        if forget:
            conn.executemany(
                "DELETE FROM skipped_files WHERE path = ?",
                [(row[0],) for row in stored if row[0] not in records],
            )
        conn.executemany(
            "INSERT OR REPLACE INTO skipped_files(path, size, mtime, sha256, reason, reader, "
            "row_sha256) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(*row, skipped_row_sha256(*row)) for row in rows],
        )
