"""The store seam: what retrieval and the engine need from an index, and which store serves it.

Two stores implement it: the embedded one (``index/reader.py`` and ``index/writer.py``: SQLite +
FAISS in the index folder, the default) and Milvus (``index/milvus_*.py``: Milvus Lite in one
file, or a Milvus server or cluster by URI). The ``store`` setting chooses; nothing above this
module knows which one it talks to. The Milvus modules are imported only when chosen.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from askdoc.config import Settings
from askdoc.index.location import StoreFacts, StoreLocation
from askdoc.index.manifest import Manifest
from askdoc.index.schema import DocumentRecord
from askdoc.types import Document, StoredChunk

if TYPE_CHECKING:
    from askdoc.embedder import Embedder
    from askdoc.index.writer import BuildReport, Progress


class Store(Protocol):
    """The read side of an index, as retrieval, answers and the engine use it. Every search
    runs inside ``snapshot()``, which yields the manifest of the generation being read."""

    notice: str
    """One line for the user about the index as it is being read ("" when all is well)."""

    def snapshot(self) -> AbstractContextManager[Manifest]: ...

    def dense(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` passages nearest ``vector``: (id, cosine), best first."""
        ...

    def lexical_top(
        self, text: str, total: int, k: int, common_fraction: float
    ) -> list[tuple[int, float]]:
        """The BM25 top ``k`` for the content words of ``text``: (id, score), best first."""
        ...

    def lexical_bound(self, text: str, total: int) -> float:
        """The highest BM25 score a passage could reach for ``text`` in this store."""
        ...

    def term_count(self, word: str) -> int:
        """How many passages hold ``word`` (as the store's analyser stems it)."""
        ...

    def chunks(self, ids: Iterable[int]) -> dict[int, StoredChunk]: ...

    def sentence_vectors_many(
        self, spans: Sequence[tuple[str, int, int]], dimension: int
    ) -> list[dict[tuple[int, int], np.ndarray]]:
        """For each (path, start, end), the sentence vectors pooled at index time for the
        passages overlapping it, keyed by absolute span (one request, where the store can)."""
        ...

    def document(self, path: str) -> Document | None: ...

    def documents(self) -> dict[str, DocumentRecord]: ...

    def close(self) -> None: ...


class Builder(Protocol):
    """The write side: one build of the corpus into the store."""

    def build(
        self,
        full: bool = False,
        dry_run: bool = False,
        wait: bool = False,
        progress: Progress | None = None,
    ) -> BuildReport: ...


def open_store(
    settings: Settings, model: dict[str, Any] | None, chunking: dict[str, Any] | None
) -> Store:
    """Open the index the settings name for reading; the model and chunking it must match."""
    location = StoreLocation.of(settings)
    if location.milvus:
        from askdoc.index.milvus_reader import MilvusReader

        return MilvusReader(settings, model, chunking)
    from askdoc.index.reader import IndexReader

    return IndexReader(settings.index, model=model, chunking=chunking)


def open_builder(settings: Settings, embedder: Embedder) -> Builder:
    """The writer of the store the settings name."""
    if StoreLocation.of(settings).milvus:
        from askdoc.index.milvus_writer import MilvusWriter

        return MilvusWriter(settings, embedder)
    from askdoc.index.writer import IndexWriter

    return IndexWriter(settings, embedder)


def read_facts(settings: Settings) -> StoreFacts | None:
    """The store's manifest, documents and remembered skips, or None when there is no index."""
    location = StoreLocation.of(settings)
    if location.milvus:
        from askdoc.index.milvus_reader import milvus_facts

        return milvus_facts(settings)
    from askdoc.index.integrity import remembered_skips
    from askdoc.index.manifest import read_manifest
    from askdoc.index.schema import DB_NAME, connect, list_documents

    db = settings.index / DB_NAME
    if not db.is_file():
        return None
    conn = connect(db)
    try:
        return StoreFacts(
            str(settings.index),
            read_manifest(conn, db),
            list_documents(conn),
            remembered_skips(conn),
        )
    finally:
        conn.close()
