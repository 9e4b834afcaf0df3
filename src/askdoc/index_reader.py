"""Read side of an index: consistent snapshots, dense and lexical search, chunk lookup.

Loading a generation checks, in this order and before the FAISS file is deserialized: the
database header (connect), the manifest's checksum, compatibility, the passage count, the digest
of the full-text index, then the FAISS file's sha256. Every passage and document row served is
checked against its own checksum. Any damage raises IndexCorruptError naming the file; a damaged
or missing FAISS file is rebuilt from the stored vectors instead (``repair=True``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from askdoc.errors import IndexCorruptError, NoIndexError
from askdoc.generations import repair_faiss
from askdoc.integrity import (
    DB_ERRORS,
    REBUILD,
    chunk_row_sha256,
    damaged,
    database_errors,
    document_content_sha256,
    document_row_sha256,
    fts_digest,
    translate,
    vector_sha256,
)
from askdoc.sentence_vectors import unpack
from askdoc.store import (
    DocumentRecord,
    Manifest,
    check_compatible,
    connect,
    decode_document,
    flat_from_rows,
    in_memory,
    load_faiss_file,
    read_manifest,
    require_index,
    valid_faiss_name,
)
from askdoc.types import Chunk, Document, StoredChunk

_COLUMNS = (
    'c.id, c.doc_id, c.ordinal, c.start, c."end", c.line_start, c.line_end, c.page, c.heading, '
    "c.text, c.text_hash, c.row_sha256, d.path, d.size, d.mtime, d.content_sha256, d.row_sha256"
)
_FROM = "FROM chunks c JOIN documents d ON d.id = c.doc_id"
DOC_FREQ_CACHE = 50_000
"""Document frequencies remembered per generation (then the memory starts afresh)."""


class _Missing(Exception):
    """The FAISS file the manifest names is not there (a build may have just replaced it)."""

    def __init__(self, generation: int) -> None:
        super().__init__(generation)
        self.generation = generation


class _Damaged(Exception):
    """The FAISS file failed its checksum: rebuild it from the stored vectors."""


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
        self._depth = 0
        self._doc_freq: dict[str, int] = {}
        self._faiss: Any = None
        self.manifest: Manifest | None = None
        try:
            with self.snapshot():
                pass
        except BaseException:
            self.conn.close()
            raise

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def snapshot(self) -> Iterator[Manifest]:
        """One read transaction on the current generation. Nested calls join the open one, so a
        whole question (search, sentence vectors, term frequencies) reads one version."""
        if self._depth and self.manifest is not None:
            self._depth += 1
            try:
                yield self.manifest
            finally:
                self._depth -= 1
            return
        missing: int | None = None
        for _attempt in range(6):
            with database_errors(self.db_path):
                self.conn.execute("BEGIN")
            try:
                manifest = self._current()
            except _Missing as gone:
                self._end("ROLLBACK")
                if gone.generation != missing:
                    missing = gone.generation
                    continue  # a writer published meanwhile: look again
                self._recover()
                continue
            except _Damaged:
                self._end("ROLLBACK")
                self._recover()
                continue
            except BaseException:
                self._end("ROLLBACK")
                raise
            self._depth = 1
            try:
                yield manifest
            except sqlite3.ProgrammingError:
                raise
            except DB_ERRORS as exc:
                raise translate(exc, self.db_path) from None
            finally:
                self._depth = 0
                self._end("COMMIT")
            return
        raise IndexCorruptError(f"{self.index_dir}: the FAISS file cannot be loaded: {REBUILD}")

    def _end(self, verb: str) -> None:
        """End the read transaction (SQLite may already have ended it after an error)."""
        if self.conn.in_transaction:
            with database_errors(self.db_path):
                self.conn.execute(verb)

    def _recover(self) -> None:
        """The FAISS file is missing or damaged: rebuild it from the stored vectors."""
        if not self._repair:
            raise IndexCorruptError(
                f"{self.index_dir}: the FAISS file named by the manifest is missing: {REBUILD}"
            )
        repair_faiss(self.index_dir)

    def _current(self) -> Manifest:
        with database_errors(self.db_path):
            manifest = read_manifest(self.conn, self.db_path)
            if manifest is None:
                raise NoIndexError(f"the index in {self.index_dir} is empty: run `askdoc index`")
            if self.manifest is None or manifest.generation != self.manifest.generation:
                check_compatible(manifest, self._model, self._chunking, self.index_dir)
                self._check_tables(manifest)
                self._faiss = self._load_faiss(manifest)
                self._doc_freq.clear()
                self.manifest = manifest
        return manifest

    def _check_tables(self, manifest: Manifest) -> None:
        """Cheap whole-index checks, once per generation: passage count and full-text digest."""
        count = self.conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        if count != manifest.chunks:
            raise IndexCorruptError(
                f"{self.db_path}: {count} passages stored but the manifest records "
                f"{manifest.chunks}: {REBUILD}"
            )
        if fts_digest(self.conn) != manifest.fts_sha256:
            raise damaged(self.db_path, "the full-text index is damaged")

    def _load_faiss(self, manifest: Manifest) -> Any:
        """The generation's FAISS file, checked against its sha256 before FAISS reads it; for a
        flat generation, the exact index built from this snapshot's vectors, checked against
        their digest."""
        if in_memory(manifest):
            index, digest = flat_from_rows(self.conn, int(manifest.model.get("dimension", 0)))
            if digest != manifest.faiss_sha256:
                raise IndexCorruptError(
                    f"{self.db_path}: the stored passage vectors are damaged (checksum "
                    f"mismatch): {REBUILD}"
                )
            return index
        name = manifest.faiss_file
        if not valid_faiss_name(name):
            raise IndexCorruptError(f"{self.db_path}: the manifest names an invalid file {name!r}")
        try:
            index = load_faiss_file(self.index_dir / name, manifest.faiss_sha256)
        except FileNotFoundError:
            raise _Missing(manifest.generation) from None
        except IndexCorruptError:
            if not self._repair:
                raise
            raise _Damaged from None
        if index.ntotal != manifest.chunks:
            raise IndexCorruptError(
                f"{self.index_dir / name}: {index.ntotal} vectors for {manifest.chunks} passages"
            )
        return index

    def dense(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        if self._faiss is None or self._faiss.ntotal == 0:
            return []
        scores, ids = self._faiss.search(vector.reshape(1, -1).astype(np.float32), k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def lexical(self, fts_query: str, k: int) -> list[tuple[int, float]]:
        if not fts_query:
            return []
        with database_errors(self.db_path):
            rows = self.conn.execute(
                "SELECT rowid, bm25(chunks_fts, 1.0, 0.5) AS r FROM chunks_fts "
                "WHERE chunks_fts MATCH ? ORDER BY r LIMIT ?",
                (fts_query, k),
            ).fetchall()
        return [(int(r[0]), -float(r[1])) for r in rows]

    def term_frequency(self, fts_term: str) -> int:
        """How many passages contain the (quoted) term, after stemming. Remembered until the
        generation changes (retrieval and the answer step both ask for a question's terms)."""
        known = self._doc_freq.get(fts_term)
        if known is not None:
            return known
        with database_errors(self.db_path):
            row = self.conn.execute(
                "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?", (fts_term,)
            ).fetchone()
        if len(self._doc_freq) >= DOC_FREQ_CACHE:
            self._doc_freq.clear()
        self._doc_freq[fts_term] = int(row[0])
        return int(row[0])

    def chunks(self, ids: Iterable[int]) -> dict[int, StoredChunk]:
        """The passages with these ids (from this snapshot's searches), each checked against
        its checksum; an id the search index names but the table lacks is damage."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        with database_errors(self.db_path):
            rows = self.conn.execute(
                f"SELECT {_COLUMNS} {_FROM} WHERE c.id IN ({marks})", wanted
            ).fetchall()
        found = {row[0]: self._checked(row) for row in rows}
        if len(found) != len(wanted):
            lost = sorted(set(wanted) - set(found))[:3]
            raise IndexCorruptError(
                f"{self.db_path}: the search index names passages that are not stored "
                f"(ids {lost}): {REBUILD}"
            )
        return found

    def neighbour(self, doc_id: int, ordinal: int) -> StoredChunk | None:
        with database_errors(self.db_path):
            row = self.conn.execute(
                f"SELECT {_COLUMNS} {_FROM} WHERE c.doc_id = ? AND c.ordinal = ?",
                (doc_id, ordinal),
            ).fetchone()
        if row is None:
            return None
        stored = self._checked(row)
        if stored.doc_id != doc_id or stored.chunk.ordinal != ordinal:
            raise damaged(self.db_path, "a passage index is damaged")
        return stored

    def sentence_vectors(
        self, path: str, start: int, end: int, dimension: int
    ) -> dict[tuple[int, int], np.ndarray]:
        """Sentence vectors pooled at index time for the passages of ``path`` overlapping
        ``[start, end)``, keyed by absolute span; every row checked against its checksum."""
        with database_errors(self.db_path):
            rows = self.conn.execute(
                f"SELECT {_COLUMNS}, s.hash, s.data, s.sha256 {_FROM} "
                "JOIN sentences s ON s.hash = c.text_hash "
                'WHERE d.path = ? AND c.start < ? AND c."end" > ? ORDER BY c.id',
                (path, end, start),
            ).fetchall()
        out: dict[tuple[int, int], np.ndarray] = {}
        for row in rows:
            stored = self._checked(row[:17])
            key, blob, sha = row[17:]
            problem = f"the sentence vectors of passage {stored.id} are damaged"
            if key != row[10] or vector_sha256(key, blob) != sha:
                raise damaged(self.db_path, problem)
            try:
                spans, vectors = unpack(blob, dimension)
            except ValueError:
                raise damaged(self.db_path, problem) from None
            for (a, b), vector in zip(spans, vectors, strict=True):
                out.setdefault((stored.chunk.start + a, stored.chunk.start + b), vector)
        return out

    def _checked(self, row: tuple[Any, ...]) -> StoredChunk:
        cid, doc_id, ordinal, start, end, line_start, line_end, page, heading, text = row[:10]
        row_sha, path, size, mtime, content, doc_sha = row[11:]
        if chunk_row_sha256(tuple(row[:11])) != row_sha:
            raise damaged(self.db_path, f"passage {cid} is damaged")
        if document_row_sha256(doc_id, path, size, mtime, content) != doc_sha:
            raise damaged(self.db_path, f"the record of document {doc_id} is damaged")
        chunk = Chunk(path, ordinal, text, start, end, line_start, line_end, page, heading)
        return StoredChunk(id=cid, doc_id=doc_id, chunk=chunk)

    def document(self, path: str) -> Document | None:
        """A document's full text and structure, checked against its checksums."""
        with database_errors(self.db_path):
            row = self.conn.execute(
                "SELECT id, path, size, mtime, sha256, kind, text, headings, page_starts, notes, "
                "content_sha256, row_sha256 FROM documents WHERE path = ?",
                (path,),
            ).fetchone()
        if row is None:
            return None
        doc_id, doc_path, size, mtime, file_sha, kind, text, headings, pages, notes = row[:10]
        content, row_sha = row[10:]
        if document_content_sha256(file_sha, kind, text, headings, pages, notes) != content or (
            document_row_sha256(doc_id, doc_path, size, mtime, content) != row_sha
        ):
            raise damaged(self.db_path, f"document {doc_id} is damaged")
        try:
            return decode_document(doc_path, kind, text, headings, pages)
        except (ValueError, TypeError) as exc:
            raise IndexCorruptError(f"{self.db_path}: document {doc_id}: {exc}") from None

    def documents(self) -> dict[str, DocumentRecord]:
        """Every document's record (without text), each row checked against its checksum."""
        with database_errors(self.db_path):
            rows = self.conn.execute(
                "SELECT id, path, size, mtime, sha256, kind, content_sha256, row_sha256 "
                "FROM documents"
            ).fetchall()
        out: dict[str, DocumentRecord] = {}
        for doc_id, path, size, mtime, file_sha, kind, content, row_sha in rows:
            if document_row_sha256(doc_id, path, size, mtime, content) != row_sha:
                raise damaged(self.db_path, f"the record of document {doc_id} is damaged")
            out[path] = DocumentRecord(doc_id, path, size, mtime, file_sha, kind)
        return out
