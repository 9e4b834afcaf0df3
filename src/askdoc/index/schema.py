"""The SQLite side of an index: its tables, connections and transactions, and the typed rows
read from them. SQLite is the transactional source of truth; the FAISS index (``vectors``) is
derived from the vectors stored here.

Layout of ``index/``::

    askdoc.sqlite3           documents, chunks (+ FTS5), vectors, sentence vectors,
                             manifest (meta table), files skipped while reading, the rows of a
                             build in progress (``pending``)
    vectors-<generation>.faiss  approximate generations only (50,000 passages and up):
                             IVF-SQ8 derived from the vectors; its sha256 is in the manifest.
                             A flat generation has no file: its exact index is built from the
                             stored vectors when it is opened (one copy of each vector).
    .lock                    flock held by the one writer (``lock``)

Every served row carries a checksum and the manifest carries its own (``integrity``,
``manifest``); docs/reliability.md says what is checked when.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Any

from askdoc.errors import AskdocError, IndexBusyError, IndexCorruptError, NoIndexError
from askdoc.types import Chunk, Document, Heading

DB_NAME = "askdoc.sqlite3"
REBUILD = "run `askdoc index --full` to rebuild it"
_BUSY = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED
_NOT_DAMAGE = {3, 7, 8, 9, 13, 14}  # PERM, NOMEM, READONLY, INTERRUPT, FULL, CANTOPEN
DB_ERRORS = (sqlite3.DatabaseError, UnicodeDecodeError)
"""What reading a damaged database raises (Python's sqlite3 decodes text, and SQLite's error
messages quoting damaged bytes, as UTF-8)."""


SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents(
    id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL, size INTEGER NOT NULL,
    mtime REAL NOT NULL, sha256 TEXT NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL,
    headings TEXT NOT NULL, page_starts TEXT NOT NULL, notes TEXT NOT NULL,
    content_sha256 TEXT NOT NULL DEFAULT '', row_sha256 TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS chunks(
    id INTEGER PRIMARY KEY AUTOINCREMENT, doc_id INTEGER NOT NULL REFERENCES documents(id),
    ordinal INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    line_start INTEGER NOT NULL, line_end INTEGER NOT NULL, page INTEGER, heading TEXT NOT NULL,
    text TEXT NOT NULL, text_hash TEXT NOT NULL, row_sha256 TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE INDEX IF NOT EXISTS chunks_hash ON chunks(text_hash);
CREATE TABLE IF NOT EXISTS vectors(
    hash TEXT PRIMARY KEY, vector BLOB NOT NULL, sha256 TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS sentences(
    hash TEXT PRIMARY KEY, data BLOB NOT NULL, sha256 TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS documents_unsealed ON documents(id) WHERE row_sha256 = '';
CREATE INDEX IF NOT EXISTS chunks_unsealed ON chunks(id) WHERE row_sha256 = '';
CREATE INDEX IF NOT EXISTS vectors_unsealed ON vectors(hash) WHERE sha256 = '';
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    text, heading, content='chunks', content_rowid='id',
    tokenize='porter unicode61 remove_diacritics 2');
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text, heading) VALUES (new.id, new.text, new.heading); END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text, heading)
    VALUES ('delete', old.id, old.text, old.heading); END;
CREATE TABLE IF NOT EXISTS skipped_files(
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime REAL NOT NULL, sha256 TEXT NOT NULL,
    reason TEXT NOT NULL, reader TEXT NOT NULL, row_sha256 TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS staged_documents(
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime REAL NOT NULL, sha256 TEXT NOT NULL,
    kind TEXT NOT NULL, text TEXT NOT NULL, headings TEXT NOT NULL, page_starts TEXT NOT NULL,
    notes TEXT NOT NULL, chunks TEXT NOT NULL);
"""


def text_hash(text: str) -> str:
    """Key of a passage's vector: identical passages share one vector."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class DocumentRecord:
    """A document as the index knows it (without its text)."""

    id: int
    path: str
    size: int
    mtime: float
    sha256: str
    kind: str


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    """Whether the database has this table (tables added since an index was written may not)."""
    query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    return conn.execute(query, (name,)).fetchone() is not None


@dataclass(frozen=True)
class SkippedRecord:
    """A file the reader could not read, remembered with what it was when it failed: it is not
    read again while its size and mtime (or its sha256) and the reading settings stay the same."""

    path: str
    size: int
    mtime: float
    sha256: str
    reason: str
    reader: str
    """The reading settings in force (``planning.reader_fingerprint``)."""


def connect(db_path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, full sync. A file that
    is not a SQLite database (damaged header) raises IndexCorruptError naming it."""
    try:
        conn = sqlite3.connect(db_path, timeout=30.0, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise translate(exc, db_path) from None
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
    except DB_ERRORS as exc:
        conn.close()
        raise translate(exc, db_path) from None
    return conn


def database_path(conn: sqlite3.Connection) -> Path:
    """The file behind a connection (for messages)."""
    try:
        row = conn.execute("PRAGMA database_list").fetchone()
        return Path(row[2]) if row and row[2] else Path(DB_NAME)
    except sqlite3.Error:
        return Path(DB_NAME)


def list_documents(conn: sqlite3.Connection) -> dict[str, DocumentRecord]:
    with database_errors(database_path(conn)):
        rows = conn.execute("SELECT id, path, size, mtime, sha256, kind FROM documents").fetchall()
    return {r[1]: DocumentRecord(*r) for r in rows}


def encode_document(doc: Document) -> dict[str, str]:
    """JSON-encoded structure fields of a document for storage."""
    return {
        "headings": json.dumps([[h.offset, h.level, h.title] for h in doc.headings]),
        "page_starts": json.dumps(list(doc.page_starts)),
        "notes": json.dumps(list(doc.notes)),
    }


def decode_document(path: str, kind: str, text: str, headings: str, pages: str) -> Document:
    return Document(
        path=path,
        text=text,
        kind=kind,
        headings=tuple(Heading(int(o), int(lv), str(t)) for o, lv, t in json.loads(headings)),
        page_starts=tuple(int(p) for p in json.loads(pages)),
    )


@contextmanager
def transaction(conn: sqlite3.Connection, mode: str = "IMMEDIATE") -> Iterator[None]:
    conn.execute(f"BEGIN {mode}")
    try:
        yield
    except BaseException:
        if conn.in_transaction:  # SQLite rolls back by itself after some errors
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def begin_read(conn: sqlite3.Connection) -> None:
    """Start a read transaction: every statement until ``end`` sees one version of the index."""
    conn.execute("BEGIN")


def end(conn: sqlite3.Connection, commit: bool = True) -> None:
    """End the open transaction, if SQLite has not ended it itself (after some errors)."""
    if conn.in_transaction:
        conn.execute("COMMIT" if commit else "ROLLBACK")


def now() -> float:
    return time.time()


def require_index(index_dir: Path) -> Path:
    db = index_dir / DB_NAME
    if not db.is_file():
        raise NoIndexError(f"no index in {index_dir}: run `askdoc index` first")
    return db


# --- the statements of the other modules, by name ------------------------------------------

CHUNK_SEAL_COLUMNS = (
    'id, doc_id, ordinal, start, "end", line_start, line_end, page, heading, text, text_hash'
)
"""The passage columns ``integrity.chunk_row_sha256`` covers, in order."""
UNSEALED_PASSAGES = f"SELECT {CHUNK_SEAL_COLUMNS} FROM chunks WHERE row_sha256 = '' LIMIT 2000"
SEALED_PASSAGES = f"SELECT {CHUNK_SEAL_COLUMNS}, row_sha256 FROM chunks"
FLAT_ROWS = (
    "SELECT c.id, v.vector FROM chunks c JOIN vectors v ON v.hash = c.text_hash ORDER BY c.id"
)
"""The (chunk id, vector) rows a flat generation's exact index is built from."""
FTS_TABLES = (
    ("chunks_fts_data", "id, block", "id"),
    ("chunks_fts_idx", "segid, term, pgno", "segid, term"),
    ("chunks_fts_docsize", "id, sz", "id"),
    ("chunks_fts_config", "k, v", "k"),
)
"""FTS5's own tables behind ``chunks_fts``: their rows change only when passages do."""

# the rows of a build in progress (``pending``)
CLEAR_STAGED = "DELETE FROM staged_documents"
STAGE_DOCUMENT = (
    "INSERT OR REPLACE INTO staged_documents(path, size, mtime, sha256, kind, text, headings, "
    "page_starts, notes, chunks) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
STAGED_PATHS = "SELECT path FROM staged_documents ORDER BY path"
STAGED_PASSAGES = "SELECT text, chunks FROM staged_documents WHERE path = ?"
STAGED_DOCUMENT = (
    "SELECT size, mtime, sha256, kind, text, headings, page_starts, notes, chunks FROM "
    "staged_documents WHERE path = ?"
)
STAGED_COUNT = "SELECT count(*) FROM staged_documents"
CREATE_PENDING = (
    "CREATE TEMP TABLE IF NOT EXISTS pending(hash TEXT PRIMARY KEY, text TEXT, body INTEGER)"
)
CLEAR_PENDING = "DELETE FROM temp.pending"
ADD_PENDING = "INSERT OR IGNORE INTO temp.pending(hash, text, body) VALUES (?, ?, ?)"
DROP_PENDING_WITH_VECTORS = "DELETE FROM temp.pending WHERE hash IN (SELECT hash FROM main.vectors)"
PENDING_COUNT = "SELECT count(*) FROM temp.pending"
PENDING_AFTER = (
    "SELECT rowid, hash, text, body FROM temp.pending WHERE rowid > ? ORDER BY rowid LIMIT ?"
)
STORE_VECTOR = "INSERT OR REPLACE INTO vectors(hash, vector, sha256) VALUES (?, ?, ?)"
STORE_SENTENCES = "INSERT OR REPLACE INTO sentences(hash, data, sha256) VALUES (?, ?, ?)"
SKIPPED_FILES = "SELECT path, size, mtime, sha256, reason, reader, row_sha256 FROM skipped_files"
FORGET_SKIPPED = "DELETE FROM skipped_files WHERE path = ?"
REMEMBER_SKIPPED = (
    "INSERT OR REPLACE INTO skipped_files(path, size, mtime, sha256, reason, reader, "
    "row_sha256) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
QUICK_CHECK = "PRAGMA quick_check"

# publishing (``pending``, ``publish``, inside the writer's transaction)
TOUCH_DOCUMENT = "UPDATE documents SET size = ?, mtime = ?, row_sha256 = '' WHERE path = ?"
RENAME_DOCUMENT = (
    "UPDATE documents SET path = ?, size = ?, mtime = ?, row_sha256 = '' WHERE path = ?"
)
DELETE_PASSAGES_OF = "DELETE FROM chunks WHERE doc_id IN (SELECT id FROM documents WHERE path = ?)"
DELETE_DOCUMENT = "DELETE FROM documents WHERE path = ?"
DELETE_ALL_PASSAGES = "DELETE FROM chunks"
DELETE_ALL_DOCUMENTS = "DELETE FROM documents"
INSERT_DOCUMENT = (
    "INSERT INTO documents(path, size, mtime, sha256, kind, text, headings, page_starts, notes)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_PASSAGE = (
    'INSERT INTO chunks(doc_id, ordinal, start, "end", line_start, line_end, page, heading, '
    "text, text_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
DELETE_UNUSED_VECTORS = "DELETE FROM vectors WHERE hash NOT IN (SELECT text_hash FROM chunks)"
DELETE_UNUSED_SENTENCES = "DELETE FROM sentences WHERE hash NOT IN (SELECT text_hash FROM chunks)"
PASSAGE_VECTORS = (
    "SELECT c.id, v.vector, v.hash, v.sha256 FROM chunks c JOIN vectors v ON v.hash = "
    "c.text_hash ORDER BY c.id"
)
PASSAGE_COUNT = "SELECT count(*) FROM chunks"
DOCUMENT_COUNT = "SELECT count(*) FROM documents"

# checksums (``integrity``) and the manifest (``manifest``)
UNSEALED_DOCUMENTS = "SELECT id FROM documents WHERE row_sha256 = ''"
DOCUMENT_TO_SEAL = (
    "SELECT path, size, mtime, sha256, kind, text, headings, page_starts, notes, content_sha256"
    " FROM documents WHERE id = ?"
)
SEAL_DOCUMENT = "UPDATE documents SET content_sha256 = ?, row_sha256 = ? WHERE id = ?"
SEAL_PASSAGE = "UPDATE chunks SET row_sha256 = ? WHERE id = ?"
UNSEALED_VECTORS = "SELECT hash, vector FROM vectors WHERE sha256 = '' LIMIT 2000"
SEAL_VECTOR = "UPDATE vectors SET sha256 = ? WHERE hash = ?"
PASSAGE_CHECKSUMS = "SELECT row_sha256 FROM chunks ORDER BY id"
READ_META = "SELECT key, value FROM meta"
WRITE_META = (
    "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = "
    "excluded.value"
)
ANY_PASSAGE = "SELECT EXISTS(SELECT 1 FROM chunks)"
TABLE_COUNT = "SELECT count(*) FROM sqlite_master"

# ``askdoc verify`` and ``--repair``
BEGIN_READ = "BEGIN"
COMMIT = "COMMIT"
INTEGRITY_CHECK = "PRAGMA integrity_check(5)"
PASSAGE_IDS = "SELECT id FROM chunks ORDER BY id"
ALL_DOCUMENTS = (
    "SELECT id, path, size, mtime, sha256, kind, text, headings, page_starts, notes, "
    "content_sha256, row_sha256 FROM documents"
)
PASSAGE_AND_DOCUMENT_TEXT = (
    'SELECT c.id, c.text, substr(d.text, c.start + 1, c."end" - c.start) FROM chunks c LEFT '
    "JOIN documents d ON d.id = c.doc_id"
)
PASSAGES_WITHOUT_VECTOR = (
    "SELECT count(*) FROM chunks c LEFT JOIN vectors v ON v.hash = c.text_hash WHERE v.hash IS NULL"
)
USED_VECTORS = (
    "SELECT v.hash, v.vector, v.sha256 FROM vectors v WHERE v.hash IN (SELECT text_hash FROM "
    "chunks)"
)
PASSAGES_WITHOUT_SENTENCES = (
    "SELECT count(*) FROM chunks c LEFT JOIN sentences s ON s.hash = c.text_hash WHERE s.hash "
    "IS NULL"
)
USED_SENTENCES = (
    "SELECT hash, data, sha256 FROM sentences WHERE hash IN (SELECT text_hash FROM chunks)"
)
SKIPPED_COUNT = "SELECT count(*) FROM skipped_files"
FTS_INTEGRITY_CHECK = "INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('integrity-check', 1)"
CHECKPOINT_PASSIVE = "PRAGMA wal_checkpoint(PASSIVE)"
CHECKPOINT_TRUNCATE = "PRAGMA wal_checkpoint(TRUNCATE)"
UNUSED_VECTOR_COUNT = (
    "SELECT count(*) FROM vectors WHERE hash NOT IN (SELECT text_hash FROM chunks)"
)


def create_tables(conn: sqlite3.Connection) -> None:
    """Create every table, index and trigger that is missing, in one transaction."""
    conn.executescript(f"BEGIN IMMEDIATE;\n{SCHEMA}\nCOMMIT;")


def fts_shadow_tables(conn: sqlite3.Connection) -> Iterator[tuple[str, Iterator[tuple[Any, ...]]]]:
    """Each of FTS5's own tables with its rows in a fixed order (for ``integrity.fts_digest``)."""
    for table, columns, order in FTS_TABLES:
        yield table, conn.execute(f"SELECT {columns} FROM {table} ORDER BY {order}")


# --- typed rows of the read side (``reader``) ----------------------------------------------

_PASSAGE = (
    'c.id, c.doc_id, c.ordinal, c.start, c."end", c.line_start, c.line_end, c.page, c.heading, '
    "c.text, c.text_hash, c.row_sha256, d.path, d.size, d.mtime, d.content_sha256, d.row_sha256"
)
_PASSAGE_FROM = "FROM chunks c JOIN documents d ON d.id = c.doc_id"


@dataclass(frozen=True)
class PassageRow:
    """A passage as stored, with what its checksums cover: its own columns, and the identity of
    its document (path, size, mtime, content checksum)."""

    id: int
    doc_id: int
    ordinal: int
    start: int
    end: int
    line_start: int
    line_end: int
    page: int | None
    heading: str
    text: str
    text_hash: str
    row_sha256: str
    path: str
    size: int
    mtime: float
    content_sha256: str
    doc_row_sha256: str

    @property
    def sealed(self) -> tuple[Any, ...]:
        """The columns ``integrity.chunk_row_sha256`` covers, in order."""
        return astuple(self)[:11]

    def chunk(self) -> Chunk:
        return Chunk(
            self.path,
            self.ordinal,
            self.text,
            self.start,
            self.end,
            self.line_start,
            self.line_end,
            self.page,
            self.heading,
        )


@dataclass(frozen=True)
class SentenceRow:
    """A passage's packed sentence vectors (``sentence_vectors.pack``) and their checksum."""

    hash: str
    data: bytes
    sha256: str


@dataclass(frozen=True)
class DocumentRow:
    """A document as stored: its text, structure and both checksums."""

    id: int
    path: str
    size: int
    mtime: float
    sha256: str
    kind: str
    text: str
    headings: str
    page_starts: str
    notes: str
    content_sha256: str
    row_sha256: str


def passages_by_id(conn: sqlite3.Connection, ids: Sequence[int]) -> list[PassageRow]:
    """The passages with these ids (any order; missing ids are left out)."""
    marks = ",".join("?" * len(ids))
    query = f"SELECT {_PASSAGE} {_PASSAGE_FROM} WHERE c.id IN ({marks})"
    return [PassageRow(*row) for row in conn.execute(query, list(ids))]


def sentences_between(
    conn: sqlite3.Connection, path: str, start: int, end: int
) -> list[tuple[PassageRow, SentenceRow]]:
    """The passages of ``path`` overlapping ``[start, end)`` that have sentence vectors, with
    them, in passage order."""
    width = len(fields(PassageRow))
    query = (
        f"SELECT {_PASSAGE}, s.hash, s.data, s.sha256 {_PASSAGE_FROM} "
        "JOIN sentences s ON s.hash = c.text_hash "
        'WHERE d.path = ? AND c.start < ? AND c."end" > ? ORDER BY c.id'
    )
    return [
        (PassageRow(*row[:width]), SentenceRow(*row[width:]))
        for row in conn.execute(query, (path, end, start))
    ]


def document_by_path(conn: sqlite3.Connection, path: str) -> DocumentRow | None:
    row = conn.execute(
        "SELECT id, path, size, mtime, sha256, kind, text, headings, page_starts, notes, "
        "content_sha256, row_sha256 FROM documents WHERE path = ?",
        (path,),
    ).fetchone()
    return None if row is None else DocumentRow(*row)


def document_identities(conn: sqlite3.Connection) -> list[DocumentRow]:
    """Every document without its text and structure (those fields are empty)."""
    rows = conn.execute(
        "SELECT id, path, size, mtime, sha256, kind, content_sha256, row_sha256 FROM documents"
    ).fetchall()
    return [
        DocumentRow(i, p, sz, mt, sha, k, "", "", "", "", c, r)
        for i, p, sz, mt, sha, k, c, r in rows
    ]


def passage_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM chunks").fetchone()[0])


def lexical_matches(conn: sqlite3.Connection, fts_query: str, k: int) -> list[tuple[int, float]]:
    """(passage id, BM25 score, higher is better) of the ``k`` best FTS5 matches (text weighs 1,
    heading 0.5)."""
    rows = conn.execute(
        "SELECT rowid, bm25(chunks_fts, 1.0, 0.5) AS r FROM chunks_fts "
        "WHERE chunks_fts MATCH ? ORDER BY r LIMIT ?",
        (fts_query, k),
    ).fetchall()
    return [(int(r[0]), -float(r[1])) for r in rows]


def match_count(conn: sqlite3.Connection, fts_query: str) -> int:
    """How many passages FTS5 matches for the query."""
    query = "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?"
    return int(conn.execute(query, (fts_query,)).fetchone()[0])


# --- SQLite errors as messages --------------------------------------------------------------


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
