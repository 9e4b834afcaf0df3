"""Checksums that make damage inside ``index/`` detectable: computed when a row is written
("sealed"), checked when it is read.

Every row that is ever served carries a sha256 of its fields, computed when the row is written
("sealed") and checked when it is read:

- ``documents.content_sha256``: file hash, kind, text, headings, pages, notes;
  ``documents.row_sha256``: id, path, size, mtime and ``content_sha256``;
- ``chunks.row_sha256``: every column of the passage, its id included;
- ``vectors.sha256``: the vector's key and bytes (checked whenever a FAISS file is built);
- ``sentences.sha256``: the key and the sentence-vector blob (checked when an answer uses it).
- ``skipped_files.row_sha256``: every column of a remembered skipped file (a row that fails it
  is forgotten: the file is read again).

The manifest carries its own checksum (``meta.manifest_sha256``), a digest of every passage
checksum (``chunks_sha256``) and a digest of the full-text index (``fts_sha256``).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from askdoc.errors import IndexCorruptError
from askdoc.index import schema


def digest(*parts: Any) -> str:
    """sha256 of the canonical JSON of ``parts`` (str, int, float, None)."""
    data = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()


def document_content_sha256(
    sha256: str, kind: str, text: str, headings: str, page_starts: str, notes: str
) -> str:
    return digest("document", sha256, kind, text, headings, page_starts, notes)


def document_row_sha256(doc_id: int, path: str, size: int, mtime: float, content: str) -> str:
    return digest("document-row", doc_id, path, size, mtime, content)


def chunk_row_sha256(row: tuple[Any, ...]) -> str:
    """``row``: id, doc_id, ordinal, start, end, line_start, line_end, page, heading, text,
    text_hash (the columns of ``CHUNK_SEAL_COLUMNS``)."""
    return digest("chunk", *row)


def skipped_row_sha256(
    path: str, size: int, mtime: float, sha256: str, reason: str, reader: str
) -> str:
    return digest("skipped", path, size, mtime, sha256, reason, reader)


def vector_sha256(key: str, blob: bytes) -> str:
    return hashlib.sha256(key.encode("utf-8") + b"\0" + bytes(blob)).hexdigest()


def verified_vectors(conn: sqlite3.Connection, db_path: Path) -> Iterator[tuple[int, bytes]]:
    """(passage id, vector) of every passage, in id order, each vector checked against its
    checksum (IndexCorruptError naming the passage): what a FAISS index is built from."""
    for chunk_id, blob, key, stored in conn.execute(schema.PASSAGE_VECTORS):
        if vector_sha256(key, blob) != stored:
            raise IndexCorruptError(
                f"{db_path}: the stored vector of passage {chunk_id} is damaged "
                f"(checksum mismatch): {schema.REBUILD}"
            )
        yield chunk_id, blob


def seal(conn: sqlite3.Connection) -> int:
    """Inside a write transaction: compute the checksums of rows written without them (new rows,
    and documents whose path, size or mtime changed). Returns how many rows were sealed."""
    sealed = 0
    for (doc_id,) in conn.execute(schema.UNSEALED_DOCUMENTS).fetchall():
        row = conn.execute(
            schema.DOCUMENT_TO_SEAL,
            (doc_id,),
        ).fetchone()
        path, size, mtime, file_sha, kind, text, headings, pages, notes, content = row
        if not content:
            content = document_content_sha256(file_sha, kind, text, headings, pages, notes)
        conn.execute(
            schema.SEAL_DOCUMENT,
            (content, document_row_sha256(doc_id, path, size, mtime, content), doc_id),
        )
        sealed += 1
    while rows := conn.execute(schema.UNSEALED_PASSAGES).fetchall():
        conn.executemany(
            schema.SEAL_PASSAGE,
            [(chunk_row_sha256(tuple(r)), r[0]) for r in rows],
        )
        sealed += len(rows)
    while vectors := conn.execute(schema.UNSEALED_VECTORS).fetchall():
        conn.executemany(
            schema.SEAL_VECTOR,
            [(vector_sha256(key, blob), key) for key, blob in vectors],
        )
        sealed += len(vectors)
    return sealed


def chunks_digest(conn: sqlite3.Connection) -> str:
    """Digest of every passage checksum in id order: rows lost or added change it."""
    hasher = hashlib.sha256()
    for (row_sha,) in conn.execute(schema.PASSAGE_CHECKSUMS):
        hasher.update(str(row_sha).encode("ascii", "replace"))
    return hasher.hexdigest()


def fts_digest(conn: sqlite3.Connection) -> str:
    """Digest of the full-text index's own tables (they change only when passages do)."""
    hasher = hashlib.sha256()
    for table, rows in schema.fts_shadow_tables(conn):
        hasher.update(table.encode())
        for row in rows:
            for value in row:
                _feed(hasher, value)
    return hasher.hexdigest()


def _feed(hasher: Any, value: Any) -> None:
    if value is None:
        hasher.update(b"n")
    elif isinstance(value, bytes):
        hasher.update(b"b%d:" % len(value) + value)
    elif isinstance(value, int):
        hasher.update(b"i%d;" % value)
    else:
        data = str(value).encode("utf-8", "surrogatepass")
        hasher.update(b"s%d:" % len(data) + data)


def remembered_skips(conn: sqlite3.Connection) -> dict[str, schema.SkippedRecord]:
    """The remembered skipped files whose rows pass their checksum (an index written before
    askdoc remembered them has none)."""
    with schema.database_errors(schema.database_path(conn)):
        rows = (
            conn.execute(schema.SKIPPED_FILES).fetchall()
            if schema.has_table(conn, "skipped_files")
            else []
        )
    return {
        row[0]: schema.SkippedRecord(*row[:6])
        for row in rows
        if skipped_row_sha256(*row[:6]) == row[6] and isinstance(row[4], str)
    }
