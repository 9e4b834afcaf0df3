"""The manifest: what an index was built with, which FAISS file belongs to it, and the digests
that let a reader check the index cheaply. Stored as JSON in ``meta``, with its own checksum."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from askdoc.errors import IndexCorruptError, IndexMismatchError
from askdoc.index import schema
from askdoc.index.schema import DB_ERRORS, REBUILD, translate

FORMAT_VERSION = 4
"""2: per-row checksums, manifest checksum, passage and full-text digests.
3: sentence vectors pooled at index time (the ``sentences`` table).
4: a flat generation keeps no FAISS file (``faiss_file`` is ""): readers build the exact index
from the stored vectors, whose digest is ``faiss_sha256`` (one copy of each vector on disk)."""


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
    chunks_sha256: str = ""
    fts_sha256: str = ""

    @classmethod
    def from_json(cls, raw: str) -> Manifest:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        known = {f.name for f in fields(cls)}
        manifest = cls(**{k: v for k, v in data.items() if k in known})
        ints = (manifest.format_version, manifest.generation, manifest.documents, manifest.chunks)
        if not all(isinstance(v, int) for v in ints):
            raise ValueError("a count is not a whole number")
        if not isinstance(manifest.model, dict) or not isinstance(manifest.chunking, dict):
            raise ValueError("model and chunking must be objects")
        return manifest

    @classmethod
    def from_meta(cls, meta: dict[str, str]) -> Manifest:
        return cls.from_json(meta["manifest"])

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


def manifest_checksum(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def read_manifest(
    conn: sqlite3.Connection, db_path: Path, publishing: bool = False
) -> Manifest | None:
    """The manifest (None for an index never completed). IndexCorruptError when it is damaged:
    its checksum is checked before anything in it is believed. Passages without a manifest are
    damage too, except ``publishing`` (inside the transaction that writes the first one)."""
    try:
        rows = conn.execute(schema.READ_META).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc) and _no_tables(conn):
            return None
        raise translate(exc, db_path) from None
    except DB_ERRORS as exc:
        raise translate(exc, db_path) from None
    meta = {str(k): v for k, v in rows}
    raw, stored = meta.get("manifest"), meta.get("manifest_sha256")
    if raw is None:
        if stored is not None or (not publishing and _has_passages(conn, db_path)):
            raise IndexCorruptError(f"{db_path}: the manifest is missing: {REBUILD}")
        return None
    if not isinstance(raw, str) or (stored is not None and manifest_checksum(raw) != stored):
        raise IndexCorruptError(f"{db_path}: damaged manifest (checksum mismatch): {REBUILD}")
    try:
        manifest = Manifest.from_json(raw)
    except (ValueError, TypeError) as exc:
        raise IndexCorruptError(f"{db_path}: damaged manifest ({exc}): {REBUILD}") from None
    if stored is None and manifest.format_version == FORMAT_VERSION:
        raise IndexCorruptError(f"{db_path}: the manifest has lost its checksum: {REBUILD}")
    return manifest


def _has_passages(conn: sqlite3.Connection, db_path: Path) -> bool:
    """Passages are only ever published together with a manifest."""
    try:
        return conn.execute(schema.ANY_PASSAGE).fetchone()[0] == 1
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return False
        raise translate(exc, db_path) from None
    except DB_ERRORS as exc:
        raise translate(exc, db_path) from None


def _no_tables(conn: sqlite3.Connection) -> bool:
    """A fresh, empty database file (as opposed to one whose schema was damaged)."""
    try:
        return conn.execute(schema.TABLE_COUNT).fetchone()[0] == 0
    except DB_ERRORS:
        return False


def write_manifest(conn: sqlite3.Connection, manifest: Manifest) -> None:
    """Inside the publishing transaction: the manifest and its checksum."""
    raw = manifest.to_json()
    conn.executemany(
        schema.WRITE_META,
        [("manifest", raw), ("manifest_sha256", manifest_checksum(raw))],
    )


def check_compatible(
    manifest: Manifest,
    model: dict[str, Any] | None,
    chunking: dict[str, Any] | None,
    where: Path | str,
) -> None:
    """Refuse an index built with another format, model or chunking settings."""
    fix = REBUILD
    if manifest.format_version != FORMAT_VERSION:
        raise IndexMismatchError(
            f"{where} has index format {manifest.format_version}, this askdoc reads "
            f"{FORMAT_VERSION}: {fix}"
        )
    if model is not None and manifest.model != model:
        theirs = f"{manifest.model.get('name')} ({manifest.model.get('dimension')}-dim)"
        ours = f"{model.get('name')} ({model.get('dimension')}-dim)"
        raise IndexMismatchError(
            f"{where} was built with another embedding model, {theirs}, not {ours}: {fix}"
        )
    if chunking is not None and manifest.chunking != chunking:
        raise IndexMismatchError(
            f"{where} was built with other chunking settings {manifest.chunking}: {fix}"
        )
