"""The index on disk. SQLite is the transactional source of truth; FAISS is a derived, checksummed
file rebuilt from the stored vectors. The only module that imports faiss (lazily).

Layout of ``index/``::

    askdoc.sqlite3           documents, chunks (+ FTS5), vectors, sentence vectors,
                             manifest (meta table), files skipped while reading
    vectors-<generation>.faiss  approximate generations only (50,000 passages and up):
                             IVF-SQ8 derived from the vectors; its sha256 is in the manifest.
                             A flat generation has no file: its exact index is built from the
                             stored vectors when it is opened (one copy of each vector).
    .lock                    flock held by the one writer

Every served row carries a checksum and the manifest carries its own (``askdoc.integrity``,
``askdoc.manifest``); docs/reliability.md says what is checked when.

A build stages its rows and vectors in their own small transactions, then publishes everything in
one transaction that also names the new FAISS file, written (fsync'd, renamed) just before the
commit. A kill at any moment leaves the previous generation in force.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from askdoc.errors import IndexCorruptError, NoIndexError
from askdoc.integrity import (
    DB_ERRORS,
    database_errors,
    skipped_row_sha256,
    translate,
)
from askdoc.lock import LOCK_NAME, IndexLock
from askdoc.manifest import (
    FORMAT_VERSION,
    Manifest,
    check_compatible,
    read_manifest,
    write_manifest,
)
from askdoc.types import Document, Heading

__all__ = ["FORMAT_VERSION", "LOCK_NAME", "IndexLock", "Manifest"]
__all__ += ["check_compatible", "read_manifest", "write_manifest"]

DB_NAME = "askdoc.sqlite3"
FAISS_PREFIX = "vectors-"
FAISS_SUFFIX = ".faiss"

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


def remembered_skips(conn: sqlite3.Connection) -> dict[str, SkippedRecord]:
    """The remembered skipped files whose rows pass their checksum (an index written before
    askdoc remembered them has none)."""
    with database_errors(database_path(conn)):
        rows = (
            conn.execute(
                "SELECT path, size, mtime, sha256, reason, reader, row_sha256 FROM skipped_files"
            ).fetchall()
            if has_table(conn, "skipped_files")
            else []
        )
    return {
        row[0]: SkippedRecord(*row[:6])
        for row in rows
        if skipped_row_sha256(*row[:6]) == row[6] and isinstance(row[4], str)
    }


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


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def faiss_name(generation: int) -> str:
    return f"{FAISS_PREFIX}{generation:08d}{FAISS_SUFFIX}"


def build_faiss(
    rows: Iterable[tuple[int, bytes]], dim: int, kind: str
) -> Any:  # faiss.Index; typed Any as faiss has no stubs
    """A FAISS index over (chunk id, vector bytes) rows; its ids are the chunk ids (IndexIDMap2).

    ``kind`` "flat" is exact search (IndexFlatIP). Any other kind ("ivf", or "hnsw", the name
    commit_generation used for "approximate") builds the index chosen by measurement on real
    embeddings (docs/performance.md): IVF with 8-bit scalar quantization, a quarter of flat's
    memory, recall@10 >= 0.95 against exact search up to 1M vectors. Its coarse quantizer must be
    trained on a *uniform* sample of the vectors (rows arrive in document order; training on the
    first ones cost 0.33 recall@10 at 1M), so the rows are spilled to an unlinked temporary file
    and added back in batches: the vectors are never all in memory. nprobe is saved in the file.
    """
    import tempfile

    import faiss

    faiss.omp_set_num_threads(1)
    batch, width = 8192, dim * 4

    def matrix_of(data: bytes) -> np.ndarray:
        return np.frombuffer(data, dtype=np.float32).reshape(-1, dim)

    def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        ids: list[int] = []
        blobs: list[bytes] = []
        for chunk_id, blob in rows:
            if len(blob) != width:
                raise IndexCorruptError(
                    f"vector of chunk {chunk_id} has {len(blob)} bytes, not {width}"
                )
            ids.append(chunk_id)
            blobs.append(blob)
            if len(ids) >= batch:
                yield np.asarray(ids, dtype=np.int64), matrix_of(b"".join(blobs))
                ids.clear()
                blobs.clear()
        if ids:
            yield np.asarray(ids, dtype=np.int64), matrix_of(b"".join(blobs))

    flat = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if kind == "flat":
        for ids, matrix in batches():
            flat.add_with_ids(matrix, ids)
        return flat
    with tempfile.TemporaryFile(prefix="askdoc-vectors-") as spill:
        id_parts = []
        for ids, matrix in batches():
            spill.write(matrix.tobytes())
            id_parts.append(ids)
        if not id_parts:
            return flat
        spill.flush()
        all_ids = np.concatenate(id_parts)
        count = len(all_ids)

        def read(begin: int, end: int) -> np.ndarray:
            return matrix_of(os.pread(spill.fileno(), (end - begin) * width, begin * width))

        nlist, nprobe, train_size = ivf_layout(count)
        sample = np.random.default_rng(0).choice(count, train_size, replace=False)
        ivf = faiss.IndexIVFScalarQuantizer(
            faiss.IndexFlatIP(dim),
            dim,
            nlist,
            faiss.ScalarQuantizer.QT_8bit,
            faiss.METRIC_INNER_PRODUCT,
        )
        ivf.cp.min_points_per_centroid = 1  # tiny indexes: no "please provide" warning
        ivf.train(np.vstack([read(int(i), int(i) + 1) for i in np.sort(sample)]))
        ivf.nprobe = nprobe
        index = faiss.IndexIDMap2(ivf)
        for begin in range(0, count, batch):
            end = min(count, begin + batch)
            index.add_with_ids(read(begin, end), all_ids[begin:end])
    return index


def ivf_layout(count: int) -> tuple[int, int, int]:
    """(nlist, nprobe, training sample size) of the approximate index for ``count`` vectors,
    set from measurements on real embeddings (docs/performance.md): about sqrt(count) lists (a
    power of two), 1/16 of them probed but at least 32, and 50 training vectors per list."""
    import math

    nlist = 1 << max(0, round(math.log2(max(1.0, math.sqrt(count)))))
    return nlist, min(nlist, max(32, nlist // 16)), min(count, 50 * nlist)


def write_faiss_file(index: Any, directory: Path, name: str) -> str:
    """Write atomically (temp file, fsync, rename, fsync dir); return the file's sha256.
    Streamed to disk while hashing: no second in-memory copy of the vectors."""
    import faiss

    tmp = directory / f".{name}.tmp-{os.getpid()}"
    digest = hashlib.sha256()
    with tmp.open("wb") as handle:

        def write(block: bytes) -> None:
            digest.update(block)
            handle.write(block)

        writer = faiss.PyCallbackIOWriter(write)  # type: ignore[attr-defined]
        faiss.write_index(index, writer)
        del writer  # flushes the last block
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, directory / name)
    _fsync_dir(directory)
    return digest.hexdigest()


def load_faiss_file(path: Path, expected_sha256: str) -> Any:
    """Read, verify the checksum, then deserialize: a damaged file is never handed to FAISS.
    Only a regular file is read (a link or FIFO planted in its place is refused)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise IndexCorruptError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IndexCorruptError(f"{path}: not a regular file")
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise IndexCorruptError(f"{path}: cannot read ({exc.strerror})") from None
    finally:
        os.close(fd)
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        raise IndexCorruptError(f"{path}: checksum mismatch (the file is damaged)")
    import faiss

    try:
        return faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    except RuntimeError as exc:
        raise IndexCorruptError(f"{path}: unreadable FAISS file ({exc})") from None


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


def now() -> float:
    return time.time()


def require_index(index_dir: Path) -> Path:
    db = index_dir / DB_NAME
    if not db.is_file():
        raise NoIndexError(f"no index in {index_dir}: run `askdoc index` first")
    return db


FLAT_ROWS = (
    "SELECT c.id, v.vector FROM chunks c JOIN vectors v ON v.hash = c.text_hash ORDER BY c.id"
)
"""The (chunk id, vector) rows a flat generation's exact index is built from."""


def in_memory(manifest: Manifest) -> bool:
    """A flat generation keeps no FAISS file: its exact index is built from the stored vectors
    (one copy of each vector on disk; format 4). Its faiss_sha256 is ``rows_digest`` of them."""
    return manifest.faiss_kind == "flat" and manifest.faiss_file == ""


def rows_digest(rows: Iterable[tuple[int, bytes]], digest: Any) -> Iterator[tuple[int, bytes]]:
    """Pass (chunk id, vector) rows through, feeding each to the hashlib object ``digest``."""
    for chunk_id, blob in rows:
        digest.update(int(chunk_id).to_bytes(8, "little", signed=True))
        digest.update(blob)
        yield chunk_id, blob


def flat_from_rows(conn: sqlite3.Connection, dim: int) -> tuple[Any, str]:
    """The exact index of a flat generation, built from the vectors the connection's snapshot
    holds (~10 ms per 2,000 passages), and the sha256 of those rows to check against the
    manifest."""
    digest = hashlib.sha256()
    index = build_faiss(rows_digest(conn.execute(FLAT_ROWS), digest), dim, "flat")
    return index, digest.hexdigest()


def faiss_file_ok(index_dir: Path, manifest: Manifest) -> bool:
    """Whether the generation's FAISS file is there, matches its checksum and FAISS reads it
    (always, for a flat generation, which has none)."""
    if in_memory(manifest):
        return True
    if not valid_faiss_name(manifest.faiss_file):
        return False
    try:
        load_faiss_file(index_dir / manifest.faiss_file, manifest.faiss_sha256)
    except (OSError, IndexCorruptError):
        return False
    return True


def faiss_ids(index: Any) -> np.ndarray:
    """The passage ids a FAISS index holds, sorted."""
    import faiss

    return np.sort(faiss.vector_to_array(index.id_map))


def valid_faiss_name(name: str) -> bool:
    """A FAISS file name the manifest may name: ``vectors-<generation>.faiss``, no folders."""
    middle = name[len(FAISS_PREFIX) : -len(FAISS_SUFFIX)]
    return name.startswith(FAISS_PREFIX) and name.endswith(FAISS_SUFFIX) and middle.isdigit()
