"""Read side of an index: consistent snapshots, dense and lexical search, chunk lookup.

Loading a generation checks, in this order and before the FAISS file is deserialized: the
database header (connect), the manifest's checksum, compatibility, the passage count, the digest
of the full-text index, then the FAISS file's sha256. Every passage and document row served is
checked against its own checksum. Any damage raises IndexCorruptError naming the file; for a
damaged or missing FAISS file the reader builds the same index in memory from the stored vectors
instead (``repair=True``) and says so in ``notice``: a reader never writes (``askdoc verify
--repair`` or the next ``askdoc index`` rewrites the file).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from askdoc.errors import IndexCorruptError, NoIndexError
from askdoc.index import schema
from askdoc.index.integrity import (
    chunk_row_sha256,
    chunks_digest,
    document_content_sha256,
    document_row_sha256,
    fts_digest,
    vector_sha256,
    verified_vectors,
)
from askdoc.index.lexical import bm25_bound, lexical_search
from askdoc.index.manifest import Manifest, check_compatible, read_manifest
from askdoc.index.schema import (
    DB_ERRORS,
    REBUILD,
    DocumentRecord,
    connect,
    damaged,
    database_errors,
    decode_document,
    require_index,
    translate,
)
from askdoc.index.vectors import (
    build_faiss,
    flat_from_rows,
    in_memory,
    load_faiss_file,
    valid_faiss_name,
)
from askdoc.sentence_vectors import unpack
from askdoc.text import fts_term
from askdoc.types import Document, StoredChunk

DOC_FREQ_CACHE = 50_000
"""Document frequencies remembered per generation (then the memory starts afresh)."""


class _Missing(Exception):
    """The FAISS file the manifest names is not there (a build may have just replaced it)."""

    def __init__(self, generation: int) -> None:
        super().__init__(generation)
        self.generation = generation


class _Damaged(Exception):
    """The FAISS file failed its checksum: search the index built from the stored vectors."""

    def __init__(self, generation: int) -> None:
        super().__init__(generation)
        self.generation = generation


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
        self.notice = ""
        """One line for the user when the FAISS file is damaged or missing (else "")."""
        self._from_vectors: int | None = None
        """The generation whose FAISS file is replaced by an index built in memory."""
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
                schema.begin_read(self.conn)
            try:
                manifest = self._current()
            except _Missing as gone:
                self._end(commit=False)
                if gone.generation != missing:
                    missing = gone.generation
                    continue  # a writer published meanwhile: look again
                self._recover(gone.generation)
                continue
            except _Damaged as bad:
                self._end(commit=False)
                self._recover(bad.generation)
                continue
            except BaseException:
                self._end(commit=False)
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
                self._end()
            return
        raise IndexCorruptError(f"{self.index_dir}: the FAISS file cannot be loaded: {REBUILD}")

    def _end(self, commit: bool = True) -> None:
        """End the read transaction (SQLite may already have ended it after an error)."""
        with database_errors(self.db_path):
            schema.end(self.conn, commit)

    def _recover(self, generation: int) -> None:
        """The FAISS file is missing or damaged: from now on this generation's index is built
        in memory from the stored vectors (``_from_stored_vectors``); the file is left as it is."""
        if not self._repair:
            raise IndexCorruptError(
                f"{self.index_dir}: the FAISS file named by the manifest is missing: {REBUILD}"
            )
        self._from_vectors = generation

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
        count = schema.passage_count(self.conn)
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
        self.notice = ""
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
        if manifest.generation == self._from_vectors:
            return self._from_stored_vectors(manifest)
        try:
            index = load_faiss_file(self.index_dir / name, manifest.faiss_sha256)
        except FileNotFoundError:
            raise _Missing(manifest.generation) from None
        except IndexCorruptError:
            if not self._repair:
                raise
            raise _Damaged(manifest.generation) from None
        if index.ntotal != manifest.chunks:
            raise IndexCorruptError(
                f"{self.index_dir / name}: {index.ntotal} vectors for {manifest.chunks} passages"
            )
        return index

    def _from_stored_vectors(self, manifest: Manifest) -> Any:
        """The index the generation's FAISS file holds, built in memory as the writer built it:
        from this snapshot's stored vectors, each checked against its checksum, once the
        passages are those the manifest records. Nothing is written."""
        if chunks_digest(self.conn) != manifest.chunks_sha256:
            raise IndexCorruptError(
                f"{self.db_path}: the passages differ from those the manifest records: {REBUILD}"
            )
        dimension = int(manifest.model.get("dimension", 0))
        index = build_faiss(
            verified_vectors(self.conn, self.db_path), dimension, manifest.faiss_kind
        )
        if index.ntotal != manifest.chunks:
            raise IndexCorruptError(
                f"{self.db_path}: {manifest.chunks - index.ntotal} passages have no "
                f"vector: {REBUILD}"
            )
        self.notice = (
            f"note: {manifest.faiss_file} is damaged or missing: searching the same index built "
            "in memory from the stored vectors; `askdoc verify --repair` or the next "
            "`askdoc index` rewrites the file"
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
            return schema.lexical_matches(self.conn, fts_query, k)

    def lexical_top(
        self, text: str, total: int, k: int, common_fraction: float
    ) -> list[tuple[int, float]]:
        """The FTS5 BM25 top ``k`` for the content words of ``text`` (``lexical_search``)."""
        return lexical_search(self, text, total, k, common_fraction)

    def lexical_bound(self, text: str, total: int) -> float:
        return bm25_bound(self, text, total)

    def term_count(self, word: str) -> int:
        """How many passages hold ``word`` after porter stemming (an FTS5 term count)."""
        return self.term_frequency(fts_term(word))

    def term_frequency(self, fts_term: str) -> int:
        """How many passages contain the (quoted) term, after stemming. Remembered until the
        generation changes (retrieval and the answer step both ask for a question's terms)."""
        known = self._doc_freq.get(fts_term)
        if known is not None:
            return known
        with database_errors(self.db_path):
            count = schema.match_count(self.conn, fts_term)
        if len(self._doc_freq) >= DOC_FREQ_CACHE:
            self._doc_freq.clear()
        self._doc_freq[fts_term] = count
        return count

    def chunks(self, ids: Iterable[int]) -> dict[int, StoredChunk]:
        """The passages with these ids (from this snapshot's searches), each checked against
        its checksum; an id the search index names but the table lacks is damage."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        with database_errors(self.db_path):
            rows = schema.passages_by_id(self.conn, wanted)
        found = {row.id: self._checked(row) for row in rows}
        if len(found) != len(wanted):
            lost = sorted(set(wanted) - set(found))[:3]
            raise IndexCorruptError(
                f"{self.db_path}: the search index names passages that are not stored "
                f"(ids {lost}): {REBUILD}"
            )
        return found

    def sentence_vectors(
        self, path: str, start: int, end: int, dimension: int
    ) -> dict[tuple[int, int], np.ndarray]:
        """Sentence vectors pooled at index time for the passages of ``path`` overlapping
        ``[start, end)``, keyed by absolute span; every row checked against its checksum."""
        with database_errors(self.db_path):
            rows = schema.sentences_between(self.conn, path, start, end)
        out: dict[tuple[int, int], np.ndarray] = {}
        for passage, sentences in rows:
            stored = self._checked(passage)
            problem = f"the sentence vectors of passage {stored.id} are damaged"
            key = sentences.hash
            if key != passage.text_hash or vector_sha256(key, sentences.data) != sentences.sha256:
                raise damaged(self.db_path, problem)
            try:
                spans, vectors = unpack(sentences.data, dimension)
            except ValueError:
                raise damaged(self.db_path, problem) from None
            for (a, b), vector in zip(spans, vectors, strict=True):
                out.setdefault((stored.chunk.start + a, stored.chunk.start + b), vector)
        return out

    def sentence_vectors_many(
        self, spans: Sequence[tuple[str, int, int]], dimension: int
    ) -> list[dict[tuple[int, int], np.ndarray]]:
        return [self.sentence_vectors(path, a, b, dimension) for path, a, b in spans]

    def _checked(self, row: schema.PassageRow) -> StoredChunk:
        """The passage, once its checksum and its document's identity checksum match."""
        if chunk_row_sha256(row.sealed) != row.row_sha256:
            raise damaged(self.db_path, f"passage {row.id} is damaged")
        identity = (row.doc_id, row.path, row.size, row.mtime, row.content_sha256)
        if document_row_sha256(*identity) != row.doc_row_sha256:
            raise damaged(self.db_path, f"the record of document {row.doc_id} is damaged")
        return StoredChunk(id=row.id, doc_id=row.doc_id, chunk=row.chunk())

    def document(self, path: str) -> Document | None:
        """A document's full text and structure, checked against its checksums."""
        with database_errors(self.db_path):
            row = schema.document_by_path(self.conn, path)
        if row is None:
            return None
        fields = (row.sha256, row.kind, row.text, row.headings, row.page_starts, row.notes)
        content = row.content_sha256
        if document_content_sha256(*fields) != content or (
            document_row_sha256(row.id, row.path, row.size, row.mtime, content) != row.row_sha256
        ):
            raise damaged(self.db_path, f"document {row.id} is damaged")
        try:
            return decode_document(row.path, row.kind, row.text, row.headings, row.page_starts)
        except (ValueError, TypeError) as exc:
            raise IndexCorruptError(f"{self.db_path}: document {row.id}: {exc}") from None

    def documents(self) -> dict[str, DocumentRecord]:
        """Every document's record (without text), each row checked against its checksum."""
        with database_errors(self.db_path):
            rows = schema.document_identities(self.conn)
        out: dict[str, DocumentRecord] = {}
        for row in rows:
            identity = (row.id, row.path, row.size, row.mtime, row.content_sha256)
            if document_row_sha256(*identity) != row.row_sha256:
                raise damaged(self.db_path, f"the record of document {row.id} is damaged")
            out[row.path] = DocumentRecord(
                row.id, row.path, row.size, row.mtime, row.sha256, row.kind
            )
        return out
