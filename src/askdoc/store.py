"""The index on disk. SQLite is the transactional source of truth; FAISS is a derived, checksummed
file rebuilt from the stored vectors. The only module that imports faiss (lazily).

Layout of ``index/``::

    askdoc.sqlite3           documents, chunks (+ FTS5), vectors, manifest (meta table)
    vectors-<generation>.faiss  derived from the vectors; its sha256 is in the manifest
    .lock                    flock held by the one writer

A build stages its rows and vectors in their own small transactions, then publishes everything in
one transaction that also names the new FAISS file, written (fsync'd, renamed) just before the
commit. A kill at any moment leaves the previous generation in force.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from askdoc.errors import (
    IndexBusyError,
    IndexCorruptError,
    IndexMismatchError,
    NoIndexError,
)
from askdoc.types import Chunk, Document, Heading, StoredChunk

FORMAT_VERSION = 1
DB_NAME = "askdoc.sqlite3"
LOCK_NAME = ".lock"
FAISS_PREFIX = "vectors-"
FAISS_SUFFIX = ".faiss"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents(
    id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL, size INTEGER NOT NULL,
    mtime REAL NOT NULL, sha256 TEXT NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL,
    headings TEXT NOT NULL, page_starts TEXT NOT NULL, notes TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks(
    id INTEGER PRIMARY KEY AUTOINCREMENT, doc_id INTEGER NOT NULL REFERENCES documents(id),
    ordinal INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    line_start INTEGER NOT NULL, line_end INTEGER NOT NULL, page INTEGER, heading TEXT NOT NULL,
    text TEXT NOT NULL, text_hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE INDEX IF NOT EXISTS chunks_hash ON chunks(text_hash);
CREATE TABLE IF NOT EXISTS vectors(hash TEXT PRIMARY KEY, vector BLOB NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    text, heading, content='chunks', content_rowid='id',
    tokenize='porter unicode61 remove_diacritics 2');
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text, heading) VALUES (new.id, new.text, new.heading); END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text, heading)
    VALUES ('delete', old.id, old.text, old.heading); END;
CREATE TABLE IF NOT EXISTS staged_documents(
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime REAL NOT NULL, sha256 TEXT NOT NULL,
    kind TEXT NOT NULL, text TEXT NOT NULL, headings TEXT NOT NULL, page_starts TEXT NOT NULL,
    notes TEXT NOT NULL, chunks TEXT NOT NULL);
"""


def text_hash(text: str) -> str:
    """Key of a passage's vector: identical passages share one vector."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Manifest:
    """What an index was built with, and which FAISS file belongs to it."""

    format_version: int
    model: dict[str, Any]
    chunking: dict[str, Any]
    generation: int
    faiss_file: str
    faiss_sha256: str
    faiss_kind: str
    built_at: float
    documents: int
    chunks: int

    @classmethod
    def from_meta(cls, meta: dict[str, str]) -> Manifest:
        raw = json.loads(meta["manifest"])
        return cls(**raw)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


@dataclass(frozen=True)
class DocumentRecord:
    """A document as the index knows it (without its text)."""

    id: int
    path: str
    size: int
    mtime: float
    sha256: str
    kind: str


def connect(db_path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, full sync."""
    conn = sqlite3.connect(db_path, timeout=30.0, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise IndexCorruptError(f"{db_path}: not a valid askdoc database ({exc})") from None
    return conn


def read_manifest(conn: sqlite3.Connection, db_path: Path) -> Manifest | None:
    try:
        rows = conn.execute("SELECT key, value FROM meta").fetchall()
        meta = {k: v for k, v in rows}
        return Manifest.from_meta(meta) if "manifest" in meta else None
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise IndexCorruptError(f"{db_path}: cannot read the manifest ({exc})") from None
    except (sqlite3.DatabaseError, ValueError, TypeError, KeyError) as exc:
        raise IndexCorruptError(f"{db_path}: damaged manifest ({exc})") from None


def list_documents(conn: sqlite3.Connection) -> dict[str, DocumentRecord]:
    rows = conn.execute("SELECT id, path, size, mtime, sha256, kind FROM documents").fetchall()
    return {r[1]: DocumentRecord(*r) for r in rows}


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class IndexLock:
    """An exclusive flock on ``index/.lock``: one writer at a time."""

    def __init__(self, index_dir: Path, wait: bool = False) -> None:
        index_dir.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(index_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(self._fd)
            raise IndexBusyError(
                f"another `askdoc index` is already building {index_dir}; "
                "wait for it to finish (or use --wait)"
            ) from None

    def release(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1


def faiss_name(generation: int) -> str:
    return f"{FAISS_PREFIX}{generation:08d}{FAISS_SUFFIX}"


def build_faiss(
    rows: Iterable[tuple[int, bytes]], dim: int, kind: str
) -> Any:  # faiss.Index; typed Any as faiss has no stubs
    """A FAISS index over (chunk id, vector bytes) rows, added in batches (vectors held once)."""
    import faiss

    faiss.omp_set_num_threads(1)
    if kind == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 80
        index = faiss.IndexIDMap2(hnsw)
    else:
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    ids: list[int] = []
    blobs: list[bytes] = []

    def flush() -> None:
        if ids:
            matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(ids), dim)
            index.add_with_ids(matrix, np.asarray(ids, dtype=np.int64))
            ids.clear()
            blobs.clear()

    for chunk_id, blob in rows:
        if len(blob) != dim * 4:
            raise IndexCorruptError(
                f"vector of chunk {chunk_id} has {len(blob)} bytes, not {dim * 4}"
            )
        ids.append(chunk_id)
        blobs.append(blob)
        if len(ids) >= 8192:
            flush()
    flush()
    return index


def write_faiss_file(index: Any, directory: Path, name: str) -> str:
    """Write atomically (temp file, fsync, rename, fsync dir); return the file's sha256."""
    import faiss

    data = faiss.serialize_index(index).tobytes()
    tmp = directory / f".{name}.tmp-{os.getpid()}"
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, directory / name)
    _fsync_dir(directory)
    return hashlib.sha256(data).hexdigest()


def load_faiss_file(path: Path, expected_sha256: str) -> Any:
    """Read, verify the checksum, then deserialize: a damaged file is never handed to FAISS."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise IndexCorruptError(f"{path}: cannot read ({exc.strerror})") from None
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        raise IndexCorruptError(f"{path}: checksum mismatch (the file is damaged)")
    import faiss

    try:
        return faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    except RuntimeError as exc:
        raise IndexCorruptError(f"{path}: unreadable FAISS file ({exc})") from None


def chunk_from_row(row: tuple[Any, ...]) -> StoredChunk:
    """Row of ``CHUNK_COLUMNS`` -> StoredChunk."""
    cid, doc_id, path, ordinal, start, end, line_start, line_end, page, heading, text = row
    chunk = Chunk(path, ordinal, text, start, end, line_start, line_end, page, heading)
    return StoredChunk(id=cid, doc_id=doc_id, chunk=chunk)


CHUNK_COLUMNS = (
    'c.id, c.doc_id, d.path, c.ordinal, c.start, c."end", c.line_start, c.line_end, c.page, '
    "c.heading, c.text"
)


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
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def now() -> float:
    return time.time()


ProgressFn = Callable[[int], None]


def check_compatible(
    manifest: Manifest, model: dict[str, Any] | None, chunking: dict[str, Any] | None, where: Path
) -> None:
    """Refuse an index built with another format, model or chunking settings."""
    fix = "run `askdoc index --full` to rebuild it"
    if manifest.format_version != FORMAT_VERSION:
        raise IndexMismatchError(
            f"{where} has index format {manifest.format_version}, this askdoc reads "
            f"{FORMAT_VERSION}: {fix}"
        )
    if model is not None and manifest.model != model:
        theirs = f"{manifest.model.get('name')} ({manifest.model.get('dimension')}-dim)"
        raise IndexMismatchError(f"{where} was built with another embedding model, {theirs}: {fix}")
    if chunking is not None and manifest.chunking != chunking:
        raise IndexMismatchError(
            f"{where} was built with other chunking settings {manifest.chunking}: {fix}"
        )


def require_index(index_dir: Path) -> Path:
    db = index_dir / DB_NAME
    if not db.is_file():
        raise NoIndexError(f"no index in {index_dir}: run `askdoc index` first")
    return db


def commit_generation(
    conn: sqlite3.Connection,
    index_dir: Path,
    model: dict[str, Any],
    chunking: dict[str, Any],
    exact_below: int,
) -> Manifest:
    """Inside an open write transaction: build the FAISS file for the rows as they now stand and
    record it in a new manifest. The caller commits; until then readers keep the old generation."""
    old = read_manifest(conn, index_dir / DB_NAME)
    generation = (old.generation if old else 0) + 1
    count = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    kind = "flat" if count < exact_below else "hnsw"
    rows = conn.execute(
        "SELECT c.id, v.vector FROM chunks c JOIN vectors v ON v.hash = c.text_hash ORDER BY c.id"
    )
    index = build_faiss(rows, int(model["dimension"]), kind)
    if index.ntotal != count:
        raise IndexCorruptError(f"{index_dir}: {count - index.ntotal} passages have no vector")
    name = faiss_name(generation)
    digest = write_faiss_file(index, index_dir, name)
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        model=model,
        chunking=chunking,
        generation=generation,
        faiss_file=name,
        faiss_sha256=digest,
        faiss_kind=kind,
        built_at=now(),
        documents=conn.execute("SELECT count(*) FROM documents").fetchone()[0],
        chunks=count,
    )
    conn.execute(
        "INSERT INTO meta(key, value) VALUES ('manifest', ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (manifest.to_json(),),
    )
    return manifest


def remove_stale_files(index_dir: Path, manifest: Manifest) -> None:
    """Drop FAISS files older than the previous generation, and temp files of dead writers."""
    keep = {manifest.faiss_file, faiss_name(manifest.generation - 1)}
    for path in index_dir.iterdir():
        name = path.name
        stale_faiss = name.startswith(FAISS_PREFIX) and name.endswith(FAISS_SUFFIX)
        if (stale_faiss and name not in keep) or (name.startswith(".") and ".tmp-" in name):
            path.unlink(missing_ok=True)


def repair_faiss(index_dir: Path) -> Manifest:
    """Rebuild a damaged or missing FAISS file from the stored vectors (takes the write lock)."""
    lock = IndexLock(index_dir)
    conn = connect(index_dir / DB_NAME)
    try:
        with transaction(conn):
            manifest = read_manifest(conn, index_dir / DB_NAME)
            if manifest is None:
                raise NoIndexError(f"no index in {index_dir}: run `askdoc index` first")
            exact_below = 1 << 62 if manifest.faiss_kind == "flat" else 0
            fresh = commit_generation(
                conn, index_dir, manifest.model, manifest.chunking, exact_below
            )
        remove_stale_files(index_dir, fresh)
        return fresh
    finally:
        conn.close()
        lock.release()
