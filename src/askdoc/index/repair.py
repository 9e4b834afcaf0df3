"""``askdoc verify --repair``: clean up after failed or killed builds and say what was done.

Under the write lock: remove the files no generation uses (FAISS and temporary files of failed
builds), drop the staged rows of an interrupted build, merge the write-ahead log into the
database; then rebuild the FAISS file from the stored vectors if it is damaged or missing.
Vectors an interrupted build stored are kept: the next build reuses them instead of embedding
again. ``leftover_notes`` names the leftovers for a plain ``askdoc verify`` (they are not
damage).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path

from askdoc.errors import AskdocError
from askdoc.index import schema
from askdoc.index.lock import LOCK_NAME, IndexLock
from askdoc.index.manifest import Manifest, read_manifest
from askdoc.index.publish import leftover_files, remove_stale_files, repair_faiss
from askdoc.index.schema import (
    DB_NAME,
    connect,
    database_errors,
    has_table,
    require_index,
    transaction,
)
from askdoc.index.vectors import faiss_file_ok


def build_running(index_dir: Path) -> bool:
    """Whether a build (or a FAISS repair) holds the write lock; creates nothing."""
    try:
        fd = os.open(index_dir / LOCK_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False  # no lock file: no build ever ran here, or it is not a file
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing drops a lock we got
    return False


def _manifest(index_dir: Path) -> Manifest | None:
    db = require_index(index_dir)
    conn = connect(db)
    try:
        return read_manifest(conn, db)
    finally:
        conn.close()


def leftover_notes(index_dir: Path) -> list[str]:
    """One line per file no generation uses (none while a build runs: its files are in use)."""
    if not (index_dir / DB_NAME).is_file() or build_running(index_dir):
        return []
    try:
        manifest = _manifest(index_dir)
    except AskdocError:  # a damaged database: verify reports that itself
        return []
    return [
        f"{name}: left by a failed build (no generation uses it); "
        "`askdoc verify --repair` removes it"
        for name in leftover_files(index_dir, manifest)
    ]


def repair_index(index_dir: Path) -> list[str]:
    """Clean up (see the module docstring); one line per thing done. IndexBusyError while a
    build runs."""
    db = require_index(index_dir)
    done: list[str] = []
    lock = IndexLock(index_dir)
    try:
        conn = connect(db)
        try:
            with database_errors(db):
                manifest = read_manifest(conn, db)
                done += _drop_staged(conn) + _merge_wal(conn) + _unused_vectors(conn)
        finally:
            conn.close()
        done += [
            f"removed {n}: left by a failed build" for n in remove_stale_files(index_dir, manifest)
        ]
    finally:
        lock.release()
    if manifest is not None and not faiss_file_ok(index_dir, manifest):
        try:
            fresh = repair_faiss(index_dir)
            done.append(f"rebuilt {fresh.faiss_file} from the stored vectors")
        except AskdocError as exc:
            done.append(f"could not rebuild {manifest.faiss_file}: {exc}")
    return done


def _drop_staged(conn: sqlite3.Connection) -> list[str]:
    if not has_table(conn, "staged_documents"):
        return []
    staged = conn.execute(schema.STAGED_COUNT).fetchone()[0]
    if not staged:
        return []
    with transaction(conn):
        conn.execute(schema.CLEAR_STAGED)
    return [f"removed {staged} staged documents of an interrupted build from {DB_NAME}"]


def _merge_wal(conn: sqlite3.Connection) -> list[str]:
    _, pages, merged = conn.execute(schema.CHECKPOINT_PASSIVE).fetchone()  # counts
    busy = conn.execute(schema.CHECKPOINT_TRUNCATE).fetchone()[0]  # (TRUNCATE says 0)
    if pages <= 0:
        return []
    if merged < pages:
        return [f"merged {merged} of the {pages} pages of {DB_NAME}-wal (a reader holds the rest)"]
    still = "; a reader still has it open" if busy else ""
    return [f"merged {DB_NAME}-wal ({pages} pages) into {DB_NAME}{still}"]


def _unused_vectors(conn: sqlite3.Connection) -> list[str]:
    unused = conn.execute(schema.UNUSED_VECTOR_COUNT).fetchone()[0]
    if not unused:
        return []
    return [f"kept {unused} vectors of an interrupted build: the next build reuses them"]
