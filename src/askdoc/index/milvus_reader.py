"""Read side of an index in Milvus: the ``Store`` that retrieval and the engine use, the same
answers and citations as the embedded store's.

Dense search is an exact (FLAT, inner product) search of the passages' vectors; lexical search
is Milvus's own BM25 full-text search (its ``english`` analyser), fused by askdoc's own score
fusion exactly as in the embedded store: the bound it divides by uses Milvus's BM25 idf. Every
passage served is checked against its checksum, every document against its content sha256.
Milvus has no read transactions: ``snapshot`` reads the manifest once per question (a new
generation clears what was remembered), and a build running meanwhile switches each file at
once (its new passages are written before its old ones are deleted).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from askdoc.config import Settings
from askdoc.errors import IndexCorruptError, NoIndexError, StoreError
from askdoc.index.location import StoreFacts, StoreLocation
from askdoc.index.manifest import Manifest, check_compatible
from askdoc.index.milvus_bm25 import fts5_scores
from askdoc.index.milvus_schema import (
    PASSAGE_FIELDS,
    MilvusIndex,
    decode_sentences,
    doc_id_of,
    passage_chunk,
    passage_row_sha256,
    stemmed,
)
from askdoc.index.schema import DocumentRecord, SkippedRecord, decode_document
from askdoc.sentence_vectors import unpack
from askdoc.text import BM25_K1, content_terms, idf
from askdoc.types import Document, StoredChunk

REBUILD = "run `askdoc index --full` to rebuild it"
SKIP_PREFIX = "skip:"
TERM_CACHE = 50_000
CANDIDATE_FACTOR = 2
"""Milvus's full-text search finds twice the passages wanted; askdoc's BM25 picks among them."""


def connect(settings: Settings, create: bool = False) -> MilvusIndex:
    """A connection to the index the settings name. Reading (``create`` False) a Milvus Lite
    file that is not there is NoIndexError: Milvus Lite would make an empty one."""
    location = StoreLocation.of(settings)
    where = location.describe(settings)
    lite = location.kind == "milvus-lite"
    if lite and not create and not os.path.exists(location.uri):
        raise NoIndexError(f"there is no index in {where} yet: run `askdoc index`")
    return MilvusIndex(settings, location.uri, lite, where)


def read_manifest(index: MilvusIndex) -> Manifest | None:
    """The manifest (None before the first build finished), checked against its sha256."""
    meta = index.meta(["manifest", "manifest_sha256"])
    raw = meta.get("manifest")
    if raw is None:
        return None
    if hashlib.sha256(raw.encode("utf-8")).hexdigest() != meta.get("manifest_sha256"):
        raise IndexCorruptError(f"{index.where}: damaged manifest (checksum mismatch): {REBUILD}")
    try:
        return Manifest.from_json(raw)
    except (ValueError, TypeError) as exc:
        raise IndexCorruptError(f"{index.where}: damaged manifest ({exc}): {REBUILD}") from None


def remembered_skips(index: MilvusIndex) -> dict[str, SkippedRecord]:
    out: dict[str, SkippedRecord] = {}
    for raw in index.meta_with_prefix(SKIP_PREFIX).values():
        try:
            record = SkippedRecord(**json.loads(raw))
        except (ValueError, TypeError):
            continue  # a damaged memo only means the file is read again
        out[record.path] = record
    return out


def document_records(index: MilvusIndex) -> dict[str, DocumentRecord]:
    return {
        str(row["path"]): DocumentRecord(
            int(row["doc_id"]),
            str(row["path"]),
            int(row["size"]),
            float(row["mtime"]),
            str(row["sha256"]),
            str(row["kind"]),
        )
        for row in index.document_rows()
    }


def milvus_facts(settings: Settings) -> StoreFacts | None:
    """What ``askdoc status`` shows, or None when the store holds no index."""
    try:
        index = connect(settings)
    except NoIndexError:
        return None
    try:
        if not index.exists():
            return None
        return StoreFacts(
            index.where, read_manifest(index), document_records(index), remembered_skips(index)
        )
    finally:
        index.close()


class MilvusReader:
    """An index in Milvus, read as a ``Store``."""

    def __init__(
        self,
        settings: Settings,
        model: dict[str, Any] | None = None,
        chunking: dict[str, Any] | None = None,
    ) -> None:
        self._model = model
        self._chunking = chunking
        self.index = connect(settings)
        self.where = self.index.where
        self.manifest: Manifest | None = None
        self._terms: dict[str, int] = {}
        self._average_words = 0.0
        self.notice = ""
        self._depth = 0
        try:
            if not self.index.exists():
                raise NoIndexError(f"there is no index in {self.where} yet: run `askdoc index`")
            with self.snapshot():
                pass
        except BaseException:
            self.index.close()
            raise

    def close(self) -> None:
        self.index.close()

    @contextmanager
    def snapshot(self) -> Iterator[Manifest]:
        if self._depth and self.manifest is not None:
            self._depth += 1
            try:
                yield self.manifest
            finally:
                self._depth -= 1
            return
        manifest = read_manifest(self.index)
        if manifest is None:
            raise NoIndexError(f"the index in {self.where} is empty: run `askdoc index`")
        if self.manifest is None or manifest.generation != self.manifest.generation:
            check_compatible(manifest, self._model, self._chunking, self.where)
            self._terms.clear()
            words = int(self.index.meta(["words"]).get("words", "0") or 0)
            self._average_words = words / manifest.chunks if manifest.chunks else 0.0
        self.manifest = manifest
        self._depth = 1
        try:
            yield manifest
        finally:
            self._depth = 0

    def dense(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        return self.index.search_dense(vector, k)

    def lexical_top(
        self, text: str, total: int, k: int, common_fraction: float
    ) -> list[tuple[int, float]]:
        """The BM25 top ``k`` for the question's content words (stop words left out, as in the
        embedded store): Milvus's full-text search finds ``CANDIDATE_FACTOR * k`` passages,
        scored again with the embedded store's formula (``milvus_bm25``)."""
        terms = [stemmed(t) for t in content_terms(text)]
        self._count_stems(terms)
        found = self.index.search_bm25(" ".join(terms), k * CANDIDATE_FACTOR)
        if not found:
            return []
        rows = self.index.passages([pid for pid, _ in found], ["id", "text", "heading"])
        by_id = {int(r["id"]): (int(r["id"]), str(r["text"]), str(r["heading"])) for r in rows}
        candidates = [by_id[pid] for pid, _ in found if pid in by_id]
        scores = fts5_scores(terms, candidates, self._stem_count, total, self._average_words)
        return scores[:k]

    def lexical_bound(self, text: str, total: int) -> float:
        """As the embedded store's: ``(k1 + 1) * sum(idf)`` over the question's terms found."""
        freqs = [self.term_count(t) for t in content_terms(text)]
        return (BM25_K1 + 1) * sum(idf(df, total) for df in freqs if df > 0)

    def term_count(self, word: str) -> int:
        """Passages holding ``word`` (its Porter stem, in their text or heading)."""
        return self._stem_count(stemmed(word))

    def _stem_count(self, term: str) -> int:
        known = self._terms.get(term)
        if known is None:
            self._count_stems([term])
            known = self._terms[term]
        return known

    def _count_stems(self, terms: Sequence[str]) -> None:
        """Count the passages holding each stem not counted yet, in one request: the length of
        a full-text search for the stem alone (at most ``milvus_schema.MAX_TOPK``: beyond that,
        the idf barely moves). Remembered until the generation changes."""
        todo = [t for t in dict.fromkeys(terms) if t not in self._terms]
        if not todo:
            return
        total = self.manifest.chunks if self.manifest is not None else 0
        found = self.index.search_bm25_many(todo, max(1, total)) if total else [[] for _ in todo]
        if len(self._terms) + len(todo) >= TERM_CACHE:
            self._terms.clear()
        for term, hits in zip(todo, found, strict=True):
            self._terms[term] = len(hits)

    def chunks(self, ids: Iterable[int]) -> dict[int, StoredChunk]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        rows = self.index.passages(wanted, PASSAGE_FIELDS)
        found = {int(row["id"]): self._checked(row) for row in rows}
        if len(found) != len(wanted):
            lost = sorted(set(wanted) - set(found))[:3]
            raise StoreError(
                f"{self.where}: passages {lost} were found by search but are gone (a build "
                "running meanwhile?): ask again"
            )
        return found

    def _checked(self, row: dict[str, Any]) -> StoredChunk:
        if passage_row_sha256(row) != row.get("row_sha256"):
            raise IndexCorruptError(f"{self.where}: passage {row.get('id')} is damaged: {REBUILD}")
        return StoredChunk(id=int(row["id"]), doc_id=int(row["doc_id"]), chunk=passage_chunk(row))

    def sentence_vectors_many(
        self, spans: Sequence[tuple[str, int, int]], dimension: int
    ) -> list[dict[tuple[int, int], np.ndarray]]:
        """One query for the passages overlapping every span, then each span's vectors in
        document order, as the embedded store: a sentence two passages share keeps the vector
        pooled in the first."""
        wanted = [(doc_id_of(path), path, start, end) for path, start, end in spans]
        rows = self.index.passages_overlapping_any([(d, a, b) for d, _, a, b in wanted])
        ordered = sorted(rows, key=lambda r: (int(r["ordinal"]), int(r["span_start"])))
        decoded: dict[int, tuple[StoredChunk, list[tuple[int, int]], np.ndarray]] = {}
        for row in ordered:
            stored = self._checked(row)
            if not row.get("sentences"):
                continue  # too long to keep: embedded on use
            try:
                found, vectors = unpack(decode_sentences(str(row["sentences"])), dimension)
            except ValueError:
                raise IndexCorruptError(
                    f"{self.where}: the sentence vectors of passage {stored.id} are damaged: "
                    f"{REBUILD}"
                ) from None
            decoded[stored.id] = (stored, found, vectors)
        out: list[dict[tuple[int, int], np.ndarray]] = []
        for doc_id, path, start, end in wanted:
            own: dict[tuple[int, int], np.ndarray] = {}
            for stored, found, vectors in decoded.values():
                chunk = stored.chunk
                if stored.doc_id != doc_id or chunk.doc_path != path:
                    continue
                if not (chunk.start < end and chunk.end > start):
                    continue
                for (a, b), vector in zip(found, vectors, strict=True):
                    own.setdefault((chunk.start + a, chunk.start + b), vector)
            out.append(own)
        return out

    def document(self, path: str) -> Document | None:
        row = self.index.document_row(doc_id_of(path))
        if row is None or row.get("path") != path:
            return None
        data = self.index.text(int(row["doc_id"]), int(row["parts"]))
        digest = hashlib.sha256(data.encode("ascii")).hexdigest() if data is not None else ""
        if data is None or digest != row.get("content_sha256"):
            raise IndexCorruptError(f"{self.where}: document {path!r} is damaged: {REBUILD}")
        try:
            fields = json.loads(data)
            return decode_document(
                path,
                str(row["kind"]),
                fields["text"],
                json.dumps(fields["headings"]),
                json.dumps(fields["page_starts"]),
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise IndexCorruptError(f"{self.where}: document {path!r}: {exc}") from None

    def documents(self) -> dict[str, DocumentRecord]:
        return document_records(self.index)
