"""Write a synthetic index through the real store schema, so the real Engine can load it.

Passages are grouped into documents (``per_doc`` passages each, separated by a blank line, so
``document.text[start:end] == chunk.text`` holds as in a real build). Vectors go into the
``vectors`` table keyed exactly as the indexer keys them, then ``commit_generation`` builds
and publishes the FAISS file, as ``askdoc index`` would.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from bench_stub import jitter

from askdoc.config import Settings
from askdoc.index.integrity import vector_sha256
from askdoc.index.manifest import Manifest
from askdoc.index.publish import commit_generation
from askdoc.index.schema import DB_NAME, SCHEMA, connect, transaction
from askdoc.index.schema import text_hash as store_text_hash
from askdoc.index.writer import _vector_salt, chunking_settings, model_manifest
from askdoc.sentence_vectors import body_spans, pack


def write_index(
    index_dir: Path,
    passages: list[str],
    vectors: np.ndarray,
    embedder: Any,
    settings: Settings | None = None,
    per_doc: int = 10,
) -> tuple[Manifest, float]:
    """Create ``index_dir`` holding ``passages`` with ``vectors``; return (manifest, seconds spent
    in commit_generation, i.e. building and writing the FAISS file)."""
    settings = replace(settings or Settings(), index=index_dir)
    model = model_manifest(embedder)
    chunking = chunking_settings(settings, embedder)
    salt = _vector_salt(model)
    index_dir.mkdir(parents=True, exist_ok=True)
    conn = connect(index_dir / DB_NAME)
    try:
        conn.executescript(f"BEGIN IMMEDIATE;\n{SCHEMA}\nCOMMIT;")
        with transaction(conn):
            for doc_no, begin in enumerate(range(0, len(passages), per_doc)):
                _insert_document(conn, doc_no, passages[begin : begin + per_doc], salt)
            data = np.ascontiguousarray(vectors, dtype=np.float32)
            conn.executemany(
                "INSERT OR IGNORE INTO vectors(hash, vector) VALUES (?, ?)",
                (
                    (store_text_hash(salt + text), data[i].tobytes())
                    for i, text in enumerate(passages)
                ),
            )
            conn.executemany(
                "INSERT OR IGNORE INTO sentences(hash, data, sha256) VALUES (?, ?, ?)",
                (
                    _sentence_row(store_text_hash(salt + text), text, data[i])
                    for i, text in enumerate(passages)
                ),
            )
        started = time.perf_counter()
        with transaction(conn):
            manifest = commit_generation(conn, index_dir, model, chunking, settings.exact_below)
        return manifest, time.perf_counter() - started
    finally:
        conn.close()


def _sentence_row(key: str, text: str, vector: np.ndarray) -> tuple[str, bytes, str]:
    """The passage's sentences with stand-in vectors (its own vector plus noise): the latency
    bench times looking them up and scoring them, not their quality."""
    spans = body_spans(text, 0)
    blob = pack(spans, jitter(vector, len(spans)))
    return key, blob, vector_sha256(key, blob)


def _insert_document(conn: Any, doc_no: int, texts: list[str], salt: str) -> None:
    body = "\n\n".join(texts)
    cursor = conn.execute(
        "INSERT INTO documents(path, size, mtime, sha256, kind, text, headings, page_starts, "
        "notes) VALUES (?, ?, 0, ?, 'md', ?, '[]', '[]', '[]')",
        (
            f"doc{doc_no:06d}.md",
            len(body.encode()),
            hashlib.sha256(body.encode()).hexdigest(),
            body,
        ),
    )
    doc_id = cursor.lastrowid
    rows = []
    start = 0
    for ordinal, text in enumerate(texts):
        line = 2 * ordinal + 1
        rows.append(
            (
                doc_id,
                ordinal,
                start,
                start + len(text),
                line,
                line,
                None,
                "",
                text,
                store_text_hash(salt + text),
            )
        )
        start += len(text) + 2
    conn.executemany(
        'INSERT INTO chunks(doc_id, ordinal, start, "end", line_start, line_end, page, heading, '
        "text, text_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
