"""The rows of a build in progress: open (or replace) the database, stage each read document
(its own commit), list the passages still without a vector and store their vectors group by
group (each group its own commit: a killed build resumes from them), then, inside the writer's
publishing transaction, promote the staged rows into the live tables. Memory stays bounded by
one document and one embedding group: passages waiting for a vector wait in a temporary table."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from askdoc.errors import IndexCorruptError
from askdoc.index import schema
from askdoc.index.integrity import skipped_row_sha256, vector_sha256
from askdoc.index.manifest import FORMAT_VERSION, read_manifest
from askdoc.index.schema import (
    SkippedRecord,
    connect,
    database_errors,
    encode_document,
    text_hash,
    transaction,
)
from askdoc.ingest import FileEntry
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
                check = conn.execute(schema.QUICK_CHECK).fetchone()[0]
                if check != "ok":
                    raise IndexCorruptError(f"{db_path}: damaged database ({check})")
            schema.create_tables(conn)
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
    schema.create_tables(conn)
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
            schema.STAGE_DOCUMENT,
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


def clear_staged(conn: sqlite3.Connection) -> None:
    """Forget the staged rows of an earlier, interrupted build (they are read again)."""
    conn.execute(schema.CLEAR_STAGED)


def delete_everything(conn: sqlite3.Connection) -> None:
    """Inside the publishing transaction of a full build: every passage and document goes."""
    conn.execute(schema.DELETE_ALL_PASSAGES)
    conn.execute(schema.DELETE_ALL_DOCUMENTS)


def delete_unused_vectors(conn: sqlite3.Connection) -> None:
    """Inside the publishing transaction: drop the vectors no passage uses any more."""
    conn.execute(schema.DELETE_UNUSED_VECTORS)
    conn.execute(schema.DELETE_UNUSED_SENTENCES)


def _staged_paths(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute(schema.STAGED_PATHS)]


def _passages(conn: sqlite3.Connection, path: str) -> Iterator[tuple[str, str, int]]:
    """(hash, text to embed, where the passage body starts in it) of one staged document's
    passages (the heading line comes first, as context)."""
    text, raw = conn.execute(schema.STAGED_PASSAGES, (path,)).fetchone()
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
    conn.execute(schema.CREATE_PENDING)
    conn.execute(schema.CLEAR_PENDING)
    for path in _staged_paths(conn):
        conn.executemany(
            schema.ADD_PENDING,
            _passages(conn, path),
        )
    if not refresh:
        conn.execute(schema.DROP_PENDING_WITH_VECTORS)
    return int(conn.execute(schema.PENDING_COUNT).fetchone()[0])


def pending_groups(conn: sqlite3.Connection) -> Iterator[list[tuple[str, str, int]]]:
    """``temp.pending`` in groups of EMBED_GROUP (hash, text, body start), in insertion order."""
    last = 0
    while True:
        rows = conn.execute(
            schema.PENDING_AFTER,
            (last, EMBED_GROUP),
        ).fetchall()
        if not rows:
            conn.execute(schema.CLEAR_PENDING)
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
        conn.executemany(schema.STORE_VECTOR, rows)
        conn.executemany(schema.STORE_SENTENCES, pooled)


def touch(conn: sqlite3.Connection, entries: list[FileEntry]) -> None:
    """New size and mtime for files whose content did not change (their rows get resealed)."""
    conn.executemany(
        schema.TOUCH_DOCUMENT,
        [(e.size, e.mtime, e.path) for e in entries],
    )


def rename(conn: sqlite3.Connection, old_path: str, entry: FileEntry) -> None:
    conn.execute(
        schema.RENAME_DOCUMENT,
        (entry.path, entry.size, entry.mtime, old_path),
    )


def delete_document(conn: sqlite3.Connection, path: str) -> None:
    conn.execute(schema.DELETE_PASSAGES_OF, (path,))
    conn.execute(schema.DELETE_DOCUMENT, (path,))


def promote_staged(conn: sqlite3.Connection) -> None:
    """Move staged documents and their passages into the live tables, one at a time."""
    for path in _staged_paths(conn):
        size, mtime, digest, kind, text, headings, pages, notes, raw = conn.execute(
            schema.STAGED_DOCUMENT,
            (path,),
        ).fetchone()
        cursor = conn.execute(
            schema.INSERT_DOCUMENT,
            (path, size, mtime, digest, kind, text, headings, pages, notes),
        )
        doc_id = cursor.lastrowid
        conn.executemany(
            schema.INSERT_PASSAGE,
            [
                (doc_id, o, s, e, ls, le, pg, hd, text[s:e], h)
                for o, s, e, ls, le, pg, hd, h in json.loads(raw)
            ],
        )
    conn.execute(schema.CLEAR_STAGED)


def keep_skips(
    conn: sqlite3.Connection, records: dict[str, SkippedRecord], forget: bool = True
) -> None:
    """Remember these skipped files (path -> record, with their checksums) in one commit; with
    ``forget``, forget every other one (removed, now readable, or refused by the scan)."""
    rows = [
        (r.path, r.size, r.mtime, r.sha256, r.reason, r.reader)
        for r in sorted(records.values(), key=lambda r: r.path)
    ]
    stored = conn.execute(schema.SKIPPED_FILES).fetchall()
    if forget and sorted(stored) == [(*row, skipped_row_sha256(*row)) for row in rows]:
        return  # nothing changed: no write
    with transaction(conn):
        if forget:
            conn.executemany(
                schema.FORGET_SKIPPED,
                [(row[0],) for row in stored if row[0] not in records],
            )
        conn.executemany(
            schema.REMEMBER_SKIPPED,
            [(*row, skipped_row_sha256(*row)) for row in rows],
        )
