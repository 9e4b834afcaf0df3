"""Chunking: exact spans, full coverage, token limits measured with the model's tokenizer."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from askdoc.embedder import Embedder
from askdoc.errors import ReadError
from askdoc.ingest.chunking import ChunkSettings, chunk_document, heading_path
from askdoc.ingest.sentences import split_sentences
from askdoc.types import Document, Heading

EMBEDDER = Embedder()
COUNT = EMBEDDER.count_tokens
SMALL = ChunkSettings(max_tokens=60, target_tokens=40, overlap_tokens=10)


def covered(text: str, spans: list[tuple[int, int]]) -> set[int]:
    return {i for a, b in spans for i in range(a, b)}


def non_blank(text: str) -> set[int]:
    return {i for i, ch in enumerate(text) if not ch.isspace()}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One. Two three. Four!", ["One.", "Two three.", "Four!"]),
        ("The U.S. think tank said so. Then left.", ["The U.S. think tank said so.", "Then left."]),
        ("See e.g. this case. Next one.", ["See e.g. this case.", "Next one."]),
        ("Title\n\nBody text here.", ["Title", "Body text here."]),
        ("- item one\n- item two", ["- item one", "- item two"]),
        (
            "a wrapped line of prose that keeps going on\nand continues here. Next.",
            ["a wrapped line of prose that keeps going on\nand continues here.", "Next."],
        ),
        ("lowercase after dot. no split here", ["lowercase after dot. no split here"]),
        ("   ", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert [text[a:b] for a, b in split_sentences(text)] == expected


def test_heading_path_nests_and_pops() -> None:
    heads = [Heading(0, 1, "A"), Heading(10, 2, "B"), Heading(20, 3, "C"), Heading(30, 2, "D")]
    assert heading_path(heads, 25) == "A > B > C"
    assert heading_path(heads, 35) == "A > D"
    assert heading_path(heads, 5) == "A"


def test_sample_corpus_chunks_are_exact_and_within_limit(corpus_dir) -> None:  # type: ignore[no-untyped-def]
    path = next(corpus_dir.iterdir())
    text = path.read_text(encoding="utf-8")
    doc = Document("a.txt", text, "txt")
    chunks = chunk_document(doc, COUNT, ChunkSettings())
    assert len(chunks) >= 2
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.line_start == text.count("\n", 0, chunk.start) + 1
    assert non_blank(text) <= covered(text, [(c.start, c.end) for c in chunks])


def test_no_chunk_is_truncated_by_the_model() -> None:
    """Measured with the model's own tokenizer, special tokens included: never over 256."""
    long_word = "Pneumonoultramicroscopicsilicovolcanoconiosis" * 40
    sentence = "The quick brown fox jumps over the lazy dog near the riverbank. "
    text = "# A very long heading " + "word " * 30 + "\n\n" + sentence * 120 + long_word + "\n"
    text += "unpunctuated " * 900
    doc = Document("big.md", text, "md", headings=(Heading(0, 1, "A very long heading"),))
    chunks = chunk_document(doc, COUNT, ChunkSettings())
    limit = EMBEDDER.max_seq_length
    tokenizer = EMBEDDER.tokens.tokenizer
    for chunk in chunks:
        assert len(tokenizer.encode(chunk.embed_text()).ids) <= limit  # with [CLS] and [SEP]
        assert text[chunk.start : chunk.end] == chunk.text
    assert non_blank(text) <= covered(text, [(c.start, c.end) for c in chunks])


def test_chunks_do_not_cross_pages_and_know_their_page() -> None:
    pages = ["First page text. " * 5, "Second page. " * 5, "Third."]
    text = "\n\n".join(pages)
    starts = (0, len(pages[0]) + 2, len(pages[0]) + len(pages[1]) + 4)
    doc = Document("p.pdf", text, "pdf", page_starts=starts)
    chunks = chunk_document(doc, COUNT, SMALL)
    assert {c.page for c in chunks} == {1, 2, 3}
    for chunk in chunks:
        page_index = chunk.page - 1  # type: ignore[operator]
        end = starts[page_index + 1] if page_index + 1 < len(starts) else len(text)
        assert starts[page_index] <= chunk.start and chunk.end <= end


def test_overlap_repeats_trailing_sentences() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(40))
    chunks = chunk_document(Document("o.txt", text, "txt"), COUNT, SMALL)
    assert len(chunks) > 2
    assert any(b.start < a.end for a, b in zip(chunks, chunks[1:], strict=False))
    assert all(b.start > a.start for a, b in zip(chunks, chunks[1:], strict=False))


PIECES = list("abcXYZ .!?\n\t-#é日1") + ["Mr.", "U.S. ", "\n\n", "word ", "Sentence. "]
TEXT = st.lists(st.sampled_from(PIECES), max_size=400).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXT)
def test_property_spans_are_exact_and_cover_everything(text: str) -> None:
    doc = Document("h.txt", text, "txt")
    chunks = chunk_document(doc, COUNT, SMALL)
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert COUNT([chunk.embed_text()])[0] <= SMALL.max_tokens
    assert non_blank(text) <= covered(text, [(c.start, c.end) for c in chunks])


@settings(max_examples=150, deadline=None)
@given(text=TEXT)
def test_property_sentences_cover_non_blank_text_once(text: str) -> None:
    spans = split_sentences(text)
    positions = [i for a, b in spans for i in range(a, b)]
    assert len(positions) == len(set(positions))
    assert non_blank(text) <= set(positions)
    assert all(text[a:b] == text[a:b].strip() for a, b in spans)


def test_a_line_longer_than_max_line_chars_is_refused_before_it_is_counted() -> None:
    counted: list[int] = []

    def count(texts: list[str]) -> list[int]:
        counted.extend(len(t) for t in texts)
        return COUNT(texts)

    line = "word " * 2_000  # 10,000 characters on one line
    document = Document("long.txt", f"Title\n\nA short first paragraph.\n\n{line}\n", "txt")
    with pytest.raises(ReadError, match=r"^a single line of 10,000 characters: longer than "):
        chunk_document(document, count, SMALL, max_line_chars=5_000)
    assert max(counted, default=0) < 5_000  # the long line never reached the tokenizer
    assert chunk_document(document, COUNT, SMALL, max_line_chars=10_000)


def test_a_run_without_sentence_breaks_is_refused_like_a_long_line() -> None:
    rows = "\n".join(f"row {i} river stone lamp field harbour granite quarry" for i in range(300))
    document = Document("table.txt", rows, "txt")  # long lines without punctuation join up
    with pytest.raises(
        ReadError, match=r"^[\d,]+ characters without a sentence or paragraph break: "
    ):
        chunk_document(document, COUNT, SMALL, max_line_chars=5_000)


def test_line_numbers_of_many_passages_match_a_recount() -> None:
    text = "".join(f"Line {i} has a sentence in it.\n" for i in range(3_000))
    chunks = chunk_document(Document("many.txt", text, "txt"), COUNT, SMALL)
    assert len(chunks) > 50
    for chunk in chunks:
        assert chunk.line_start == text.count("\n", 0, chunk.start) + 1
        assert chunk.line_end == text.count("\n", 0, max(chunk.start, chunk.end - 1)) + 1
