"""Checksums that make damage inside ``index/`` detectable, and SQLite errors turned into
messages that name the damaged file.

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
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from askdoc.errors import AskdocError, IndexBusyError, IndexCorruptError

REBUILD = "run `askdoc index --full` to rebuild it"
FTS_TABLES = (
    ("chunks_fts_data", "id, block", "id"),
    ("chunks_fts_idx", "segid, term, pgno", "segid, term"),
    ("chunks_fts_docsize", "id, sz", "id"),
    ("chunks_fts_config", "k, v", "k"),
)
_BUSY = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED
_NOT_DAMAGE = {3, 7, 8, 9, 13, 14}  # PERM, NOMEM, READONLY, INTERRUPT, FULL, CANTOPEN
DB_ERRORS = (sqlite3.DatabaseError, UnicodeDecodeError)
"""What reading a damaged database raises (Python's sqlite3 decodes text, and SQLite's error
messages quoting damaged bytes, as UTF-8)."""


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


CHUNK_SEAL_COLUMNS = (
    'id, doc_id, ordinal, start, "end", line_start, line_end, page, heading, text, text_hash'
)


def seal(conn: sqlite3.Connection) -> int:
    """Inside a write transaction: compute the checksums of rows written without them (new rows,
    and documents whose path, size or mtime changed). Returns how many rows were sealed."""
    sealed = 0
    for (doc_id,) in conn.execute("SELECT id FROM documents WHERE row_sha256 = ''").fetchall():
        row = conn.execute(
            "SELECT path, size, mtime, sha256, kind, text, headings, page_starts, notes, "
            "content_sha256 FROM documents WHERE id = ?",
            (doc_id,),
        ).fetchone()
        path, size, mtime, file_sha, kind, text, headings, pages, notes, content = row
        if not content:
            content = document_content_sha256(file_sha, kind, text, headings, pages, notes)
        conn.execute(
            "UPDATE documents SET content_sha256 = ?, row_sha256 = ? WHERE id = ?",
            (content, document_row_sha256(doc_id, path, size, mtime, content), doc_id),
        )
        sealed += 1
    while rows := conn.execute(
        f"SELECT {CHUNK_SEAL_COLUMNS} FROM chunks WHERE row_sha256 = '' LIMIT 2000"
    ).fetchall():
        conn.executemany(
            "UPDATE chunks SET row_sha256 = ? WHERE id = ?",
            [(chunk_row_sha256(tuple(r)), r[0]) for r in rows],
        )
        sealed += len(rows)
    while vectors := conn.execute(
        "SELECT hash, vector FROM vectors WHERE sha256 = '' LIMIT 2000"
    ).fetchall():
        conn.executemany(
            "UPDATE vectors SET sha256 = ? WHERE hash = ?",
            [(vector_sha256(key, blob), key) for key, blob in vectors],
        )
        sealed += len(vectors)
    return sealed


def chunks_digest(conn: sqlite3.Connection) -> str:
    """Digest of every passage checksum in id order: rows lost or added change it."""
    hasher = hashlib.sha256()
    for (row_sha,) in conn.execute("SELECT row_sha256 FROM chunks ORDER BY id"):
        hasher.update(str(row_sha).encode("ascii", "replace"))
    return hasher.hexdigest()


def fts_digest(conn: sqlite3.Connection) -> str:
    """Digest of the full-text index's own tables (they change only when passages do)."""
    hasher = hashlib.sha256()
    for table, columns, order in FTS_TABLES:
        hasher.update(table.encode())
        for row in conn.execute(f"SELECT {columns} FROM {table} ORDER BY {order}"):
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


def translate(exc: sqlite3.Error | UnicodeDecodeError, db_path: Path) -> AskdocError:
    """The AskdocError for a SQLite error met while using the index at ``db_path``."""
    if isinstance(exc, UnicodeDecodeError):
        return IndexCorruptError(f"{db_path}: damaged database (text that is not UTF-8): {REBUILD}")
    code = int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
    if code in _BUSY:
        return IndexBusyError(f"{db_path}: the index is busy ({exc}); try again")
    if code in _NOT_DAMAGE:
        return AskdocError(f"{db_path}: {exc}")
    return IndexCorruptError(f"{db_path}: damaged database ({exc}): {REBUILD}")


@contextmanager
def database_errors(db_path: Path) -> Iterator[None]:
    """Turn SQLite errors (damage, busy, disk full) into AskdocErrors naming the file; errors of
    askdoc's own making (ProgrammingError) pass through."""
    try:
        yield
    except sqlite3.ProgrammingError:
        raise
    except DB_ERRORS as exc:
        raise translate(exc, db_path) from None


def damaged(db_path: Path, what: str) -> IndexCorruptError:
    return IndexCorruptError(f"{db_path}: {what} (checksum mismatch): {REBUILD}")
