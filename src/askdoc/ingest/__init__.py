"""Untrusted files in, Documents and Chunks out: scan the corpus, read each file in an isolated
process under a time and memory limit, parse it by format, split it into sentences and passages.

The names other parts of askdoc use are importable from here; the modules inside import one
another directly (``readers`` -> ``parsers``; ``chunking`` -> ``sentences``; ``isolation`` ->
``readers``, ``chunking``; ``read_worker``, the child process, -> all of them).
"""

from __future__ import annotations

from askdoc.ingest.chunking import ChunkSettings, TokenCounter, chunk_document
from askdoc.ingest.isolation import (
    IsolatedReader,
    ReadResult,
    WorkerConfig,
    close_idle_readers,
    isolated_reader,
)
from askdoc.ingest.readers import (
    SUPPORTED_SUFFIXES,
    FileEntry,
    Skipped,
    display_name,
    read_document,
    scan_corpus,
    size_label,
)
from askdoc.ingest.sentences import Span, split_sentences

__all__ = [
    "SUPPORTED_SUFFIXES",
    "ChunkSettings",
    "FileEntry",
    "IsolatedReader",
    "ReadResult",
    "Skipped",
    "Span",
    "TokenCounter",
    "WorkerConfig",
    "chunk_document",
    "close_idle_readers",
    "display_name",
    "isolated_reader",
    "read_document",
    "scan_corpus",
    "size_label",
    "split_sentences",
]
