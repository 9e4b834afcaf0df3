"""Rank fusion, diversity, passage merging and FTS5 query building (pure + real SQLite)."""

from __future__ import annotations

import sqlite3

import pytest

from askdoc.retrieval import FusionParams, diversify, fuse, merge, overlaps
from askdoc.text import build_fts_query, content_terms
from askdoc.types import Chunk, StoredChunk


def test_fuse_rewards_agreement() -> None:
    fused = fuse([1, 2, 3], [3, 4, 1], FusionParams(k=60, dense_weight=1.0, lexical_weight=1.0))
    scores = dict(fused)
    assert [cid for cid, _ in fused][:2] == [1, 3]
    assert scores[1] == pytest.approx(1 / 61 + 1 / 63)
    assert scores[3] == pytest.approx(1 / 63 + 1 / 61)
    assert scores[2] == pytest.approx(1 / 62)
    assert scores[4] == pytest.approx(1 / 62)


def test_fuse_ties_keep_dense_order_first() -> None:
    fused = fuse([10, 20], [30, 40], FusionParams(k=1, dense_weight=1.0, lexical_weight=1.0))
    assert [cid for cid, _ in fused] == [10, 30, 20, 40]


def test_fuse_weights_and_single_lists() -> None:
    params = FusionParams(k=10, dense_weight=1.0, lexical_weight=0.5)
    assert [c for c, _ in fuse([1, 2], [2], params)] == [2, 1]
    assert [c for c, _ in fuse([], [5, 6], params)] == [5, 6]
    assert fuse([], [], params) == []


def test_diversify_prefers_a_new_document_when_close() -> None:
    ranked = [(1, 1.0), (2, 0.99), (3, 0.98)]
    doc_of = {1: 100, 2: 100, 3: 200}
    assert [c for c, _ in diversify(ranked, doc_of, 0.9)] == [1, 3, 2]
    far = [(1, 1.0), (2, 0.99), (3, 0.5)]
    assert [c for c, _ in diversify(far, doc_of, 0.9)] == [1, 2, 3]


def stored(cid: int, doc: int, text: str, start: int) -> StoredChunk:
    chunk = Chunk("d.txt", cid, text, start, start + len(text), 1, 1 + text.count("\n"))
    return StoredChunk(cid, doc, chunk)


def test_overlapping_passages_merge_into_the_exact_union() -> None:
    document = "Alpha one. Beta two. Gamma three. Delta four."
    a = stored(1, 7, document[0:20], 0)
    b = stored(2, 7, document[11:33], 11)
    c = stored(3, 8, document[11:33], 11)
    assert overlaps(a, b) and not overlaps(a, c)
    merged = merge(b, a)
    assert merged.chunk.text == document[0:33]
    assert (merged.chunk.start, merged.chunk.end) == (0, 33)


NASTY = [
    '"',
    '""',
    "'",
    "a AND b",
    "OR",
    "AND OR NOT",
    "NEAR(a b, 3)",
    "NEAR(",
    "text:secret",
    "heading : x",
    "{text heading}: x",
    "prefix*",
    "*",
    "^start",
    "-excluded",
    "a - b",
    "+plus",
    "(unbalanced",
    "unbalanced)",
    "((()))",
    'a"b"c',
    'say "hello world"',
    "emoji 🚀🔥 rockets",
    "🙂",
    "x" * 5000,
    "word " * 500,
    "\x00nul byte",
    "\x1b[31mred\x1b[0m",
    "tab\tand\nnewline",
    "semicolon; DROP TABLE chunks; --",
    "Robert'); DROP TABLE documents;--",
    "%_%",
    "back\\slash",
    "日本語のテキスト",
    "Ελληνικά κείμενο",
    "العربية نص",
    "a:b:c",
    "col1:col2:",
    "NOT",
    "the",
    "?",
    "...",
    "$$$",
    "@#!&",
    "under_score words",
    "MATCH 'x'",
    "rank:1",
    "rowid=1",
    "a NEAR/3 b",
    "\u202eright-to-left override",
]


@pytest.fixture
def fts() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(text, heading, tokenize='porter unicode61')")
    conn.executemany(
        "INSERT INTO t(text, heading) VALUES (?, ?)",
        [
            ("the secret word is rockets", "x"),
            ("hello world again", "greeting"),
            ("日本語のテキスト です", "jp"),
        ],
    )
    return conn


@pytest.mark.parametrize("text", NASTY)
def test_fts_query_survives_any_input(fts: sqlite3.Connection, text: str) -> None:
    assert len(NASTY) >= 40
    query = build_fts_query(text)
    if not query:
        assert content_terms(text) == []
        return
    rows = fts.execute(
        "SELECT rowid, bm25(t) FROM t WHERE t MATCH ? ORDER BY bm25(t) LIMIT 5", (query,)
    ).fetchall()
    assert isinstance(rows, list)


def test_fts_query_finds_the_words(fts: sqlite3.Connection) -> None:
    query = build_fts_query("what is the SECRET word?")
    rows = fts.execute("SELECT rowid FROM t WHERE t MATCH ?", (query,)).fetchall()
    assert rows == [(1,)]
