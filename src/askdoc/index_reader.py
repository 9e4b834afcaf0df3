"""Read side of an index: consistent snapshots, dense and lexical search, chunk lookup."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from askdoc.errors import IndexCorruptError, NoIndexError
from askdoc.store import (
    CHUNK_COLUMNS,
    FAISS_PREFIX,
    FAISS_SUFFIX,
    DocumentRecord,
    Manifest,
    check_compatible,
    chunk_from_row,
    connect,
    decode_document,
    list_documents,
    load_faiss_file,
    read_manifest,
    repair_faiss,
    require_index,
)
from askdoc.types import Document, StoredChunk


class IndexReader:
    """Read side of an index: consistent snapshots, dense and lexical search, chunk lookup.

    Every search runs inside ``snapshot()``: one SQLite read transaction whose generation matches
    the loaded FAISS index, so a reader never mixes two versions of the index.
    """

    def __init__(
        self,
        index_dir: Path,
        model: dict[str, Any] | None = None,
        chunking: dict[str, Any] | None = None,
        repair: bool = True,
    ) -> None:
        self.index_dir = index_dir
        self.db_path = require_index(index_dir)
        self._model = model
        self._chunking = chunking
        self._repair = repair
        self.conn = connect(self.db_path)
        self._faiss: Any = None
        self.manifest: Manifest | None = None
        with self.snapshot():
            pass

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def snapshot(self) -> Iterator[Manifest]:
        for attempt in range(5):
            self.conn.execute("BEGIN")
            try:
                manifest = self._current()
            except FileNotFoundError:
                self.conn.execute("ROLLBACK")
                if attempt >= 2 and self._repair:
                    repair_faiss(self.index_dir)
                continue  # a writer published twice meanwhile: look again
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            try:
                yield manifest
            finally:
                self.conn.execute("COMMIT")
            return
        raise IndexCorruptError(
            f"{self.index_dir}: the FAISS file named by the manifest is missing"
        )

    def _current(self) -> Manifest:
        manifest = read_manifest(self.conn, self.db_path)
        if manifest is None:
            raise NoIndexError(f"the index in {self.index_dir} is empty: run `askdoc index`")
        if self.manifest is None or manifest.generation != self.manifest.generation:
            check_compatible(manifest, self._model, self._chunking, self.index_dir)
            self._faiss = self._load_faiss(manifest)
            self.manifest = read_manifest(self.conn, self.db_path)
        assert self.manifest is not None
        return self.manifest

    def _load_faiss(self, manifest: Manifest) -> Any:
        """Load the generation's FAISS file; a damaged one is rebuilt from the stored vectors."""
        name = manifest.faiss_file
        if "/" in name or not (name.startswith(FAISS_PREFIX) and name.endswith(FAISS_SUFFIX)):
            raise IndexCorruptError(f"{self.db_path}: the manifest names an invalid file {name!r}")
        try:
            return load_faiss_file(self.index_dir / name, manifest.faiss_sha256)
        except IndexCorruptError:
            if not self._repair:
                raise
        self.conn.execute("ROLLBACK")
        repaired = repair_faiss(self.index_dir)
        self.conn.execute("BEGIN")
        current = read_manifest(self.conn, self.db_path)
        if current is None or current.generation != repaired.generation:
            raise FileNotFoundError(name)  # someone published meanwhile: the caller retries
        return load_faiss_file(self.index_dir / repaired.faiss_file, repaired.faiss_sha256)

    def dense(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        if self._faiss is None or self._faiss.ntotal == 0:
            return []
        scores, ids = self._faiss.search(vector.reshape(1, -1).astype(np.float32), k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def lexical(self, fts_query: str, k: int) -> list[tuple[int, float]]:
        if not fts_query:
            return []
        rows = self.conn.execute(
            "SELECT rowid, bm25(chunks_fts, 1.0, 0.5) AS r FROM chunks_fts "
            "WHERE chunks_fts MATCH ? ORDER BY r LIMIT ?",
            (fts_query, k),
        ).fetchall()
        return [(int(r[0]), -float(r[1])) for r in rows]

    def term_frequency(self, fts_term: str) -> int:
        """How many passages contain the (quoted) term, after stemming."""
        row = self.conn.execute(
            "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?", (fts_term,)
        ).fetchone()
        return int(row[0])

    def chunks(self, ids: Iterable[int]) -> dict[int, StoredChunk]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        rows = self.conn.execute(
            f"SELECT {CHUNK_COLUMNS} FROM chunks c JOIN documents d ON d.id = c.doc_id "
            f"WHERE c.id IN ({marks})",
            wanted,
        ).fetchall()
        return {row[0]: chunk_from_row(row) for row in rows}

    def neighbour(self, doc_id: int, ordinal: int) -> StoredChunk | None:
        row = self.conn.execute(
            f"SELECT {CHUNK_COLUMNS} FROM chunks c JOIN documents d ON d.id = c.doc_id "
            "WHERE c.doc_id = ? AND c.ordinal = ?",
            (doc_id, ordinal),
        ).fetchone()
        return chunk_from_row(row) if row else None

    def document(self, path: str) -> Document | None:
        row = self.conn.execute(
            "SELECT path, kind, text, headings, page_starts FROM documents WHERE path = ?", (path,)
        ).fetchone()
        return decode_document(*row) if row else None

    def documents(self) -> dict[str, DocumentRecord]:
        return list_documents(self.conn)
