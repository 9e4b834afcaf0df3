"""Publishing a generation: inside the writer's transaction, build and record its FAISS file
and a new manifest; after it, remove what older generations and failed builds left; rebuild a
damaged FAISS file from the stored vectors.

The FAISS work itself (build, write, load) stays in ``vectors``, the only module that imports
faiss; this module only sequences it.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

from askdoc.errors import IndexCorruptError, NoIndexError
from askdoc.index import schema
from askdoc.index.integrity import chunks_digest, fts_digest, seal, verified_vectors
from askdoc.index.lock import IndexLock
from askdoc.index.manifest import FORMAT_VERSION, Manifest, read_manifest, write_manifest
from askdoc.index.schema import DB_NAME, REBUILD, connect, database_errors, now, transaction
from askdoc.index.vectors import (
    FAISS_PREFIX,
    FAISS_SUFFIX,
    build_faiss,
    faiss_file_ok,
    faiss_name,
    rows_digest,
    write_faiss_file,
)


def commit_generation(
    conn: sqlite3.Connection,
    index_dir: Path,
    model: dict[str, Any],
    chunking: dict[str, Any],
    exact_below: int,
) -> Manifest:
    """Inside an open write transaction: build the FAISS file for the rows as they now stand (or,
    below ``exact_below`` passages, only the digest of the rows readers will build the exact
    index from) and record it in a new manifest. The caller commits; until then readers keep
    the old generation."""
    db_path = index_dir / DB_NAME
    old = read_manifest(conn, db_path, publishing=True)
    generation = (old.generation if old else 0) + 1
    seal(conn)
    count = conn.execute(schema.PASSAGE_COUNT).fetchone()[0]
    kind = "flat" if count < exact_below else "ivf"
    rows = verified_vectors(conn, db_path)
    if kind == "flat":  # no file: readers build the exact index from these rows (format 4)
        hasher = hashlib.sha256()
        total = sum(1 for _ in rows_digest(rows, hasher))
        name, digest = "", hasher.hexdigest()
    else:
        index = build_faiss(rows, int(model["dimension"]), kind)
        total = index.ntotal
        name = faiss_name(generation)
        digest = write_faiss_file(index, index_dir, name)
    if total != count:
        raise IndexCorruptError(f"{index_dir}: {count - total} passages have no vector")
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        model=model,
        chunking=chunking,
        generation=generation,
        faiss_file=name,
        faiss_sha256=digest,
        faiss_kind=kind,
        built_at=now(),
        documents=conn.execute(schema.DOCUMENT_COUNT).fetchone()[0],
        chunks=count,
        chunks_sha256=chunks_digest(conn),
        fts_sha256=fts_digest(conn),
    )
    write_manifest(conn, manifest)
    return manifest


def leftover_files(index_dir: Path, manifest: Manifest | None) -> list[str]:
    """Names of the files in ``index_dir`` no generation uses: FAISS files other than the current
    and the previous generation's (kept for readers still on it), and temporary files. Under the
    write lock they are leftovers of failed or killed builds (or of the previous generation)."""
    keep = set() if manifest is None else {manifest.faiss_file, faiss_name(manifest.generation - 1)}
    names = []
    for path in sorted(index_dir.iterdir()) if index_dir.is_dir() else []:
        name = path.name
        faiss = name.startswith(FAISS_PREFIX) and name.endswith(FAISS_SUFFIX)
        if (faiss and name not in keep) or (name.startswith(".") and ".tmp-" in name):
            names.append(name)
    return names


def remove_stale_files(index_dir: Path, manifest: Manifest | None) -> list[str]:
    """Remove ``leftover_files`` (the caller holds the write lock); their names."""
    removed = leftover_files(index_dir, manifest)
    for name in removed:
        (index_dir / name).unlink(missing_ok=True)
    return removed


def repair_faiss(index_dir: Path, wait: float = 10.0) -> Manifest:
    """Rebuild a damaged or missing FAISS file from the stored vectors (``askdoc verify
    --repair``; takes the write lock, waiting up to ``wait`` seconds for a running build).
    Nothing is rebuilt when the current generation's file is sound by then (a build published,
    or another repair ran). Readers never call this: they search the same index built in memory
    (``reader``) until the file is rewritten."""
    lock = IndexLock(index_dir, timeout=wait)
    conn = connect(index_dir / DB_NAME)
    try:
        with database_errors(index_dir / DB_NAME), transaction(conn):
            manifest = read_manifest(conn, index_dir / DB_NAME)
            if manifest is None:
                raise NoIndexError(f"no index in {index_dir}: run `askdoc index` first")
            if faiss_file_ok(index_dir, manifest):
                return manifest
            exact_below = 1 << 62 if manifest.faiss_kind == "flat" else 0
            fresh = commit_generation(
                conn, index_dir, manifest.model, manifest.chunking, exact_below
            )
            if (fresh.chunks_sha256, fresh.fts_sha256) != (
                manifest.chunks_sha256,
                manifest.fts_sha256,
            ):  # the rows changed under the manifest: rebuilding would bless damage
                raise IndexCorruptError(
                    f"{index_dir / DB_NAME}: the passages differ from those the manifest "
                    f"records: {REBUILD}"
                )
        remove_stale_files(index_dir, fresh)
        return fresh
    finally:
        conn.close()
        lock.release()
