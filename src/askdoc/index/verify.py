"""``askdoc verify``: check every file and every row of an index; list each problem in one line,
starting with the name of the file it is in. Never modifies the index.

What is checked (docs/reliability.md): SQLite's own ``PRAGMA integrity_check`` (every page, every
index), the manifest's checksum and format, the FAISS file's sha256, size and ids, the checksum
of every document, passage and vector row (and of each remembered skipped file), passage text
against document text, the passage and full-text digests of the manifest, FTS5's own integrity
check, and files askdoc does not know.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from askdoc.errors import AskdocError, IndexCorruptError
from askdoc.index import schema
from askdoc.index.integrity import (
    chunk_row_sha256,
    chunks_digest,
    document_content_sha256,
    document_row_sha256,
    fts_digest,
    remembered_skips,
    vector_sha256,
)
from askdoc.index.lock import LOCK_NAME
from askdoc.index.manifest import FORMAT_VERSION, Manifest, read_manifest
from askdoc.index.schema import (
    DB_ERRORS,
    DB_NAME,
    connect,
    has_table,
    require_index,
    translate,
)
from askdoc.index.vectors import (
    FAISS_PREFIX,
    FAISS_SUFFIX,
    faiss_ids,
    flat_from_rows,
    in_memory,
    load_faiss_file,
    valid_faiss_name,
)
from askdoc.sentence_vectors import unpack

_KNOWN = {DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", f"{DB_NAME}-journal", LOCK_NAME}
KEPT_BY_GIT = {".gitkeep", ".gitignore"}
"""Files a repository keeps to hold the index folder (askdoc's own has index/.gitkeep): not
askdoc's, not unexpected either."""


def verify_index(index_dir: Path) -> list[str]:
    """Problems found (empty when the index is sound)."""
    problems = unexpected_files(index_dir)
    try:
        db = require_index(index_dir)
        conn = connect(db)
    except AskdocError as exc:
        return problems + [_short(str(exc), index_dir)]
    try:
        problems.extend(_verify(conn, index_dir))
    except AskdocError as exc:
        problems.append(str(exc))
    except DB_ERRORS as exc:
        problems.append(str(translate(exc, Path(DB_NAME))))
    finally:
        conn.close()
    return [_short(p, index_dir) for p in problems]


def _short(problem: str, index_dir: Path) -> str:
    """Name files relative to the index folder."""
    return problem.replace(f"{index_dir}/", "")


def unexpected_files(index_dir: Path) -> list[str]:
    """Files askdoc never reads (it ignores them; their presence is reported)."""
    if not index_dir.is_dir():
        return []
    problems = []
    for path in sorted(index_dir.iterdir()):
        name = path.name
        faiss = valid_faiss_name(name)
        temp = name.startswith("." + FAISS_PREFIX) and ".tmp-" in name and FAISS_SUFFIX in name
        if name not in _KNOWN | KEPT_BY_GIT and not faiss and not temp:
            problems.append(f"{name}: unexpected file (askdoc never reads it; remove it)")
    return problems


def _verify(conn: sqlite3.Connection, index_dir: Path) -> list[str]:
    conn.execute(schema.BEGIN_READ)  # one snapshot, even while a build publishes
    try:
        problems = _verify_snapshot(conn, index_dir)
    finally:
        if conn.in_transaction:
            conn.execute(schema.COMMIT)
    if not problems:
        problems = _fts_integrity(conn)
    return problems


def _verify_snapshot(conn: sqlite3.Connection, index_dir: Path) -> list[str]:
    rows = conn.execute(schema.INTEGRITY_CHECK).fetchall()
    if [r[0] for r in rows] != ["ok"]:
        found = "; ".join(str(r[0]) for r in rows)
        return [f"{DB_NAME}: SQLite integrity check failed ({found})"]
    manifest = read_manifest(conn, index_dir / DB_NAME)
    if manifest is None:
        return [f"{DB_NAME}: no manifest (the index was never completed)"]
    if manifest.format_version != FORMAT_VERSION:
        return [f"{DB_NAME}: index format {manifest.format_version}, not {FORMAT_VERSION}"]
    problems = _check_faiss(conn, index_dir, manifest)
    dimension = int(manifest.model.get("dimension", 0))
    checks = (_check_documents, _check_chunks, _check_vectors, _check_sentences, _check_fts)
    for check in (*checks, _check_skipped):
        problems.extend(check(conn, manifest, dimension))
    return problems


def _check_faiss(conn: sqlite3.Connection, index_dir: Path, manifest: Manifest) -> list[str]:
    name = manifest.faiss_file
    if in_memory(manifest):  # flat: the index readers build from the stored vectors
        name = f"{DB_NAME} (passage vectors)"
        index, digest = flat_from_rows(conn, int(manifest.model.get("dimension", 0)))
        if digest != manifest.faiss_sha256:
            return [f"{name}: checksum mismatch (the stored vectors are damaged)"]
    elif not valid_faiss_name(name):
        return [f"{DB_NAME}: the manifest names an invalid file {name!r}"]
    else:
        try:
            index = load_faiss_file(index_dir / name, manifest.faiss_sha256)
        except FileNotFoundError:
            return [f"{name}: missing"]
        except AskdocError as exc:
            return [str(exc)]
    if index.ntotal != manifest.chunks:
        return [f"{name}: {index.ntotal} vectors but {manifest.chunks} passages"]
    ids = faiss_ids(index) if hasattr(index, "id_map") else None
    rows = conn.execute(schema.PASSAGE_IDS)
    stored = np.fromiter((r[0] for r in rows), dtype=np.int64)
    if ids is not None and not np.array_equal(ids, stored):
        return [f"{name}: its passage ids differ from the stored passages"]
    return []


def _count_bad(rows: Any, bad: Callable[[tuple[Any, ...]], bool]) -> tuple[int, list[Any]]:
    count, first = 0, list[Any]()
    for row in rows:
        if bad(row):
            count += 1
            if len(first) < 3:
                first.append(row[0])
    return count, first


def _check_documents(conn: sqlite3.Connection, manifest: Manifest, _dim: int) -> list[str]:
    def bad(row: tuple[Any, ...]) -> bool:
        doc_id, path, size, mtime, file_sha, kind, text, heads, pages, notes, content, sha = row
        return (
            document_content_sha256(file_sha, kind, text, heads, pages, notes) != content
            or document_row_sha256(doc_id, path, size, mtime, content) != sha
        )

    count, first = _count_bad(
        conn.execute(schema.ALL_DOCUMENTS),
        bad,
    )
    problems = [f"{DB_NAME}: {count} documents fail their checksum (ids {first})"] if count else []
    stored = conn.execute(schema.DOCUMENT_COUNT).fetchone()[0]
    if stored != manifest.documents:
        problems.append(f"{DB_NAME}: {stored} documents, the manifest records {manifest.documents}")
    return problems


def _check_chunks(conn: sqlite3.Connection, manifest: Manifest, _dim: int) -> list[str]:
    count, first = _count_bad(
        conn.execute(schema.SEALED_PASSAGES),
        lambda row: chunk_row_sha256(tuple(row[:11])) != row[11],
    )
    problems = [f"{DB_NAME}: {count} passages fail their checksum (ids {first})"] if count else []
    count, first = _count_bad(
        conn.execute(schema.PASSAGE_AND_DOCUMENT_TEXT),
        lambda row: row[1] != row[2],
    )
    if count:
        problems.append(f"{DB_NAME}: {count} passages differ from their document (ids {first})")
    if chunks_digest(conn) != manifest.chunks_sha256:
        problems.append(f"{DB_NAME}: the passages differ from those the manifest records")
    return problems


def _check_vectors(conn: sqlite3.Connection, _manifest: Manifest, dimension: int) -> list[str]:
    missing = conn.execute(schema.PASSAGES_WITHOUT_VECTOR).fetchone()[0]
    problems = [f"{DB_NAME}: {missing} passages have no vector"] if missing else []
    count, first = _count_bad(
        conn.execute(schema.USED_VECTORS),
        lambda row: len(row[1]) != dimension * 4 or vector_sha256(row[0], row[1]) != row[2],
    )
    if count:
        problems.append(f"{DB_NAME}: {count} vectors fail their checksum or size")
    return problems


def _check_sentences(conn: sqlite3.Connection, _manifest: Manifest, dimension: int) -> list[str]:
    missing = conn.execute(schema.PASSAGES_WITHOUT_SENTENCES).fetchone()[0]
    problems = [f"{DB_NAME}: {missing} passages have no sentence vectors"] if missing else []

    def bad(row: tuple[Any, ...]) -> bool:
        key, blob, sha = row
        if vector_sha256(key, blob) != sha:
            return True
        try:
            unpack(blob, dimension)
        except ValueError:
            return True
        return False

    count, _first = _count_bad(
        conn.execute(schema.USED_SENTENCES),
        bad,
    )
    if count:
        problems.append(f"{DB_NAME}: {count} passages' sentence vectors fail their checksum")
    return problems


def _check_fts(conn: sqlite3.Connection, manifest: Manifest, _dim: int) -> list[str]:
    if fts_digest(conn) != manifest.fts_sha256:
        return [f"{DB_NAME}: the full-text index differs from the one the manifest records"]
    return []


def _check_skipped(conn: sqlite3.Connection, _manifest: Manifest, _dim: int) -> list[str]:
    if not has_table(conn, "skipped_files"):  # an index written before skips were kept
        return []
    stored = conn.execute(schema.SKIPPED_COUNT).fetchone()[0]
    bad = stored - len(remembered_skips(conn))
    if bad:
        return [f"{DB_NAME}: {bad} remembered skipped files fail their checksum (read again next)"]
    return []


def _fts_integrity(conn: sqlite3.Connection) -> list[str]:
    """FTS5's own check (a write statement in SQLite's eyes: it waits for a running build)."""
    try:
        conn.execute(schema.FTS_INTEGRITY_CHECK)
    except DB_ERRORS as exc:
        error = translate(exc, Path(DB_NAME))
        if not isinstance(error, IndexCorruptError):
            raise error from None
        return [f"{DB_NAME}: the full-text index is damaged ({exc})"]
    return []
