"""Which store the settings name (``StoreLocation``), and what ``askdoc status`` shows of one
(``StoreFacts``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from askdoc.config import Settings
from askdoc.index.manifest import Manifest
from askdoc.index.schema import DocumentRecord, SkippedRecord


@dataclass(frozen=True)
class StoreFacts:
    """What ``askdoc status`` shows of a store, read without the model: the manifest (None
    before the first build), the documents it holds and the files it remembers as unreadable."""

    where: str
    manifest: Manifest | None
    documents: Mapping[str, DocumentRecord]
    skipped: Mapping[str, SkippedRecord]


@dataclass(frozen=True)
class StoreLocation:
    """A parsed ``store`` setting: ``kind`` is "embedded", "milvus-lite" or "milvus"."""

    kind: str
    uri: str
    """For Milvus Lite, the database file; for a server, its URL."""

    @classmethod
    def of(cls, settings: Settings) -> StoreLocation:
        store = settings.store
        if not store:
            return cls("embedded", str(settings.index))
        if store.startswith("milvus-lite:"):
            return cls("milvus-lite", str(Path(store.removeprefix("milvus-lite:")).expanduser()))
        return cls("milvus", store)

    @property
    def milvus(self) -> bool:
        return self.kind != "embedded"

    def describe(self, settings: Settings) -> str:
        """How messages name the store: the index folder, or the Milvus collection and where."""
        if not self.milvus:
            return str(settings.index)
        return f"Milvus collection {settings.milvus_collection!r} at {self.uri}"
