"""Rank fusion, diversity, passage merging and FTS5 query building (pure + real SQLite), and
leaving common terms out of the lexical query (on a real index)."""

from __future__ import annotations

import random
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import replace

import pytest

from askdoc.config import Settings
from askdoc.engine import Engine
from askdoc.index.lexical import bm25_bound, lexical_search
from askdoc.index.reader import IndexReader
from askdoc.retrieval import (
    FusionParams,
    diversify,
    fuse,
    fuse_scores,
    merge,
    overlaps,
    search,
)
from askdoc.text import BM25_K1, build_fts_query, content_terms, fts_query, fts_term, rare_terms
from askdoc.text import idf as bm25_idf
from askdoc.types import Chunk, StoredChunk
from tests.conftest import FakeEmbedder


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


def test_score_fusion_adds_the_normalised_lexical_score() -> None:
    dense = [(1, 0.60), (2, 0.58), (3, 0.40)]
    lexical = [(2, 9.0), (4, 6.0)]
    fused = fuse_scores(dense, lexical, bound=10.0, alpha=0.4)
    scores = dict(fused)
    assert scores[1] == pytest.approx(0.60)
    assert scores[2] == pytest.approx(0.58 + 0.4 * 0.9)
    assert scores[4] == pytest.approx(0.40 + 0.4 * 0.6)  # lexical only: the lowest cosine
    assert [c for c, _ in fused] == [2, 4, 1, 3]
    # a weak lexical match cannot overturn a clear dense lead
    assert [c for c, _ in fuse_scores(dense, [(3, 0.5)], 10.0, 0.4)][0] == 1
    # no bound (no known term): dense order
    assert [c for c, _ in fuse_scores(dense, lexical, 0.0, 0.4)][:3] == [1, 2, 3]


def test_bm25_bound_is_above_every_score(common_index: IndexReader) -> None:
    """The normalised lexical score stays below 1: FTS5's bm25 never reaches the bound."""
    for question in ("widget manual gearbox", "lever lever frobnicator", "configure zeppelin"):
        with common_index.snapshot() as manifest:
            bound = bm25_bound(common_index, question, manifest.chunks)
            hits = common_index.lexical(build_fts_query(question), 50)
        assert hits and all(0 < score < bound for _, score in hits)


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
    """Any input is a valid query that finds exactly the rows holding one of its words."""
    query = build_fts_query(text)
    if not query:
        assert content_terms(text) == []
        return
    rows = {r[0] for r in fts.execute("SELECT rowid FROM t WHERE t MATCH ?", (query,))}
    each = set()
    for term in content_terms(text):
        each |= {
            r[0] for r in fts.execute("SELECT rowid FROM t WHERE t MATCH ?", (fts_term(term),))
        }
    assert rows == each


def test_there_are_enough_nasty_inputs() -> None:
    assert len(NASTY) >= 40


def test_fts_query_finds_the_words(fts: sqlite3.Connection) -> None:
    query = build_fts_query("what is the SECRET word?")
    rows = fts.execute("SELECT rowid FROM t WHERE t MATCH ?", (query,)).fetchall()
    assert rows == [(1,)]


def test_rare_terms_keeps_the_rare_and_the_two_rarest() -> None:
    terms = ["alpha", "beta", "gamma", "delta"]
    # 100 passages, limit 5%: only "delta" is rare enough; "gamma" is the second rarest
    assert rare_terms(terms, [50, 90, 8, 3], 100, 0.05) == ["gamma", "delta"]
    assert rare_terms(terms, [50, 90, 8, 3], 100, 0.10) == ["gamma", "delta"]
    assert rare_terms(terms, [5, 90, 8, 3], 100, 0.05) == ["alpha", "delta"]  # 5 <= 5%
    assert rare_terms(terms, [4, 90, 5, 3], 100, 0.05) == ["alpha", "gamma", "delta"]
    assert rare_terms(terms, [60, 90, 70, 80], 100, 0.05) == ["alpha", "gamma"]  # all common
    assert rare_terms(terms, [50, 90, 8, 3], 100, 1.0) == terms  # 1.0: nothing is common


def test_rare_terms_ties_absent_terms_and_short_questions() -> None:
    assert rare_terms(["a1", "b2", "c3"], [40, 40, 40], 100, 0.05) == ["a1", "b2"]  # ties: order
    # a term found nowhere matches nothing: never rare, and not counted among the rarest
    assert rare_terms(["a1", "b2", "c3"], [0, 40, 90], 100, 0.05) == ["b2", "c3"]
    assert rare_terms(["a1", "b2", "c3"], [0, 0, 0], 100, 0.05) == []
    assert rare_terms(["a1", "b2"], [90, 95], 100, 0.05) == ["a1", "b2"]  # <= 2 terms: all
    assert rare_terms(["a1"], [0], 100, 0.05) == ["a1"]
    assert rare_terms([], [], 100, 0.05) == []


def _passage(n: int) -> str:
    words = ["widget"]  # in all 40 passages
    words += ["manual"] if n < 30 else []  # 30
    words += ["configure"] if n < 20 else []  # 20
    words += ["gearbox"] if n < 4 else []  # 4
    words += ["lever"] * (1 + n % 3) if n % 5 == 0 else []  # 8, repeated 1-3 times
    words += {7: ["frobnicator"], 9: ["zeppelin"], 10: ["deployed"], 11: ["deploying"]}.get(n, [])
    words += {12: ["deployment"], 13: ["deployments"], 14: ["deploys"]}.get(n, [])
    filler = " and some more words" * (n % 4)  # passages of different lengths
    return f"Note {n} is about the {' and the '.join(words)}{filler}.\n"


@pytest.fixture(scope="module")
def common_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexReader]:
    """A real index of 40 one-passage documents with known document frequencies."""
    root = tmp_path_factory.mktemp("common")
    corpus = root / "corpus"
    corpus.mkdir()
    for n in range(40):
        (corpus / f"note{n:02d}.txt").write_text(_passage(n), encoding="utf-8")
    engine = Engine(replace(Settings(), corpus=corpus, index=root / "index"), FakeEmbedder())
    engine.build()
    reader = engine.open_index()
    assert reader.manifest is not None and reader.manifest.chunks == 40
    yield reader
    engine.close()


class Recording:
    """An IndexReader that records the FTS5 queries it runs."""

    def __init__(self, reader: IndexReader) -> None:
        self.reader = reader
        self.queries: list[str] = []

    def term_frequency(self, fts_term: str) -> int:
        return self.reader.term_frequency(fts_term)

    def lexical(self, fts_query: str, k: int) -> list[tuple[int, float]]:
        self.queries.append(fts_query)
        return self.reader.lexical(fts_query, k)


def _search(reader: IndexReader, text: str, k: int, fraction: float = 0.05) -> Recording:
    """lexical_search, checked against the plain query over every term (same ranking)."""
    recording = Recording(reader)
    with reader.snapshot() as manifest:
        got = lexical_search(recording, text, manifest.chunks, k, fraction)  # type: ignore[arg-type]
        plain = reader.lexical(build_fts_query(text), k)
    assert [cid for cid, _ in got] == [cid for cid, _ in plain]
    assert [score for _, score in got] == pytest.approx([score for _, score in plain])
    return recording


QUESTIONS = [
    "How do I configure the widget gearbox with the frobnicator?",
    "widget manual configure",
    "the widget manual: how to configure it?",
    "frobnicator zeppelin gearbox",
    "lever gearbox manual widget",
    "configure the lever of the manual widget",
    "deployed widget deployment lever",
    "widget zeppelin qwertyuiop",
    "widget manual",
]


@pytest.mark.parametrize("k", [1, 3, 5, 10, 50])
@pytest.mark.parametrize("fraction", [0.02, 0.05, 0.2, 0.6, 1.0])
def test_lexical_search_ranks_as_the_plain_query(
    common_index: IndexReader, k: int, fraction: float
) -> None:
    for question in QUESTIONS:
        _search(common_index, question, k, fraction)


def test_lexical_search_ranks_as_the_plain_query_random(common_index: IndexReader) -> None:
    vocabulary = "widget manual configure gearbox lever frobnicator zeppelin deployed deployment "
    vocabulary += "note words more about 7 12 33 qwertyuiop"
    rng = random.Random(11)
    answered_first = 0
    for _ in range(300):
        question = " ".join(rng.sample(vocabulary.split(), rng.randint(3, 7)))
        recording = _search(common_index, question, rng.choice([1, 2, 3, 5, 10]), 0.05)
        answered_first += len(recording.queries) == 2  # the bound held: no plain query
    assert answered_first > 50


def test_common_terms_are_left_to_the_bound(common_index: IndexReader) -> None:
    # dfs: configure 20, widget 40, gearbox 4, frobnicator 1 of 40; 5% = 2 passages. The
    # rarest two are searched first; widget and configure (idf ~0) cannot reach the top 3.
    question = "How do I configure the widget gearbox with the frobnicator?"
    rare, common = fts_query(["gearbox", "frobnicator"]), fts_query(["configure", "widget"])
    assert _search(common_index, question, 3).queries == [
        f"({rare}) AND ({common})",
        f"({rare}) NOT ({common})",
    ]
    # only 2 passages have a rare term: the 5 best need the plain query
    rare, common = fts_query(["frobnicator", "zeppelin"]), fts_query(["gearbox"])
    assert _search(common_index, "frobnicator zeppelin gearbox", 5).queries == [
        f"({rare}) AND ({common})",
        f"({rare}) NOT ({common})",
        build_fts_query("frobnicator zeppelin gearbox"),
    ]
    # 1.0: nothing is common; two terms: both are rare
    assert _search(common_index, question, 3, 1.0).queries == [build_fts_query(question)]
    assert _search(common_index, "widget manual", 3).queries == [build_fts_query("widget manual")]


def test_a_question_of_common_words_still_searches(common_index: IndexReader) -> None:
    recording = _search(common_index, "the widget manual: how to configure it?", 5)
    rare, common = fts_query(["manual", "configure"]), fts_query(["widget"])
    assert recording.queries[0] == f"({rare}) AND ({common})"
    hits = search(common_index, None, "the widget manual: how to configure it?", 5, "lexical")
    assert len(hits) == 5
    assert all("configure" in h.chunk.text and "manual" in h.chunk.text for h in hits)
    # an unknown word (df 0) is neither rare nor common: it matches nothing anyway
    recording = _search(common_index, "widget zeppelin gearbox qwertyuiop manual", 1)
    rare, common = fts_query(["zeppelin", "gearbox"]), fts_query(["widget", "manual"])
    assert recording.queries[0] == f"({rare}) AND ({common})"


def test_bm25_bound_matches_fts5() -> None:
    """The bound's idf is FTS5's: a one-term query's score is idf * f(k1+1) / (f + K) < idf *
    (k1 + 1), and tends to it as the term repeats."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(text, tokenize='porter unicode61')")
    rows = ["zebra " * 200 + "end"] + ["other words here"] * 9
    conn.executemany("INSERT INTO t(text) VALUES (?)", [(r,) for r in rows])
    score = -conn.execute("SELECT bm25(t) FROM t WHERE t MATCH 'zebra'").fetchone()[0]
    bound = (BM25_K1 + 1) * bm25_idf(1, 10)
    assert 0.9 * bound < score < bound
    assert bm25_idf(9, 10) == 1e-6  # FTS5 floors a term in most rows


def test_document_frequencies_follow_the_porter_stems(common_index: IndexReader) -> None:
    """term_frequency counts what FTS5 indexed after porter stemming: "deployed", "deploying",
    "deploys" share the stem "deploi"; "deployment(s)" is "deploy". Checked against FTS5's own
    per-term counts (an fts5vocab table in the TEMP schema, read inside the reader's snapshot)."""
    conn = common_index.conn
    conn.execute("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, chunks_fts, 'row')")
    try:
        with common_index.snapshot():
            vocab = dict(conn.execute("SELECT term, doc FROM temp.vocab").fetchall())
            df = {w: common_index.term_frequency(fts_term(w)) for w in _DEPLOY}
            widgets = common_index.term_frequency(fts_term("WIDGETS"))
            unknown = common_index.term_frequency(fts_term("qwertyuiop"))
    finally:
        conn.execute("DROP TABLE temp.vocab")
    assert vocab["deploi"] == 3 and vocab["deploy"] == 2 and vocab["widget"] == 40
    assert df == {"deployed": 3, "deploying": 3, "deploys": 3, "deployment": 2, "deployments": 2}
    assert (widgets, unknown) == (40, 0)


_DEPLOY = ("deployed", "deploying", "deploys", "deployment", "deployments")
_QUOTED = re.compile(r'"(?:[^"]|"")*"')


@pytest.mark.parametrize("text", NASTY)
@pytest.mark.parametrize("suffix", ["", " widget manual configure gearbox"])
def test_split_queries_survive_any_input(common_index: IndexReader, text: str, suffix: str) -> None:
    recording = _search(common_index, text + suffix, 5)
    quoted = {fts_term(t) for t in content_terms(text + suffix)}
    for query in recording.queries:
        assert set(_QUOTED.findall(query)) <= quoted
        assert re.fullmatch(r"[() ]*((OR|AND|NOT)[() ]+)*", _QUOTED.sub("", query))
    hits = search(common_index, None, text + suffix, 3, "lexical")
    with common_index.snapshot():
        matching = set()
        for term in content_terms(text + suffix):
            matching |= {cid for cid, _ in common_index.lexical(fts_term(term), 100)}
    assert {hit.chunk_id for hit in hits} <= matching
    assert len(hits) == min(3, len(matching))
