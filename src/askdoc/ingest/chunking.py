"""Pure chunking: Document -> Chunks that fit the embedding model, with exact spans.

Every chunk's text is ``document.text[chunk.start:chunk.end]``. Chunks never cross a heading or a
page boundary, are made of whole sentences (a sentence longer than the budget is cut at word
boundaries), and never exceed ``max_tokens`` word-pieces including the heading carried as context.

The tokenizer never sees more than one bounded batch at a time, and a line (or a run of text
without a sentence or paragraph break) longer than ``max_line_chars`` is refused before it is
counted: tokenizing one 40 MB string takes more memory than the reader process may use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from askdoc.errors import ReadError
from askdoc.ingest.sentences import Span, split_sentences
from askdoc.types import Chunk, Document, Heading, page_at

TokenCounter = Callable[[Sequence[str]], list[int]]
"""Counts word-pieces (without special tokens) for each text, in one batch."""

HEADING_TOKEN_CAP = 48
COUNT_BATCH_CHARS = 1_000_000
"""Most characters handed to the tokenizer in one call (its memory grows with the batch)."""

_TITLE = re.compile(r"(\s*)([^\n]{1,80})\n(?:[ \t]*\n|[=*#~-]{3,}[ \t]*(?:\n|$))")


@dataclass(frozen=True)
class ChunkSettings:
    """How big passages are: ``target_tokens`` per passage, never above ``max_tokens``."""

    max_tokens: int = 254
    target_tokens: int = 200
    overlap_tokens: int = 40

    @property
    def budget(self) -> int:
        return min(self.target_tokens, self.max_tokens)


def title_heading(text: str) -> Heading | None:
    """A plain-text document's title: a short first line followed by a blank or underline line."""
    match = _TITLE.match(text)
    if match is None:
        return None
    title = match.group(2).strip()
    return Heading(match.start(2), 1, title) if title else None


def sections(document: Document) -> list[tuple[int, int, str]]:
    """(start, end, heading path) for each run of text between headings and page breaks."""
    text = document.text
    cuts = {0, len(text)}
    headings = document.headings
    if not headings and document.kind == "txt":
        title = title_heading(text)
        headings = (title,) if title else ()
    cuts.update(h.offset for h in headings if 0 <= h.offset <= len(text))
    cuts.update(p for p in document.page_starts if 0 <= p <= len(text))
    ordered = sorted(cuts)
    result: list[tuple[int, int, str]] = []
    for start, end in zip(ordered, ordered[1:], strict=False):
        if text[start:end].strip():
            result.append((start, end, heading_path(headings, start)))
    return result


def heading_path(headings: Sequence[Heading], offset: int) -> str:
    """ "Top > Sub > Subsub" for the headings in force at ``offset``."""
    stack: list[Heading] = []
    for heading in headings:
        if heading.offset > offset:
            break
        while stack and stack[-1].level >= heading.level:
            stack.pop()
        stack.append(heading)
    return " > ".join(h.title for h in stack if h.title)


def chunk_document(
    document: Document,
    count: TokenCounter,
    settings: ChunkSettings,
    max_line_chars: int | None = None,
) -> list[Chunk]:
    """Split a document into passages; see the module docstring for the guarantees. ReadError
    when a sentence is longer than ``max_line_chars`` (None: no limit)."""
    chunks: list[Chunk] = []
    lines = _Lines(document.text)
    for start, end, heading in sections(document):
        heading = _fit_heading(heading, count)
        heading_tokens = count([heading])[0] if heading else 0
        budget = max(8, min(settings.budget, settings.max_tokens - heading_tokens))
        spans = _bounded_sentences(document.text, start, end, count, budget, max_line_chars)
        for first, last in _pack(spans, count, document.text, budget, settings.overlap_tokens):
            chunks.append(_make_chunk(document, len(chunks), first, last, heading, lines))
    return chunks


def _check_length(text: str, spans: list[Span], limit: int | None) -> None:
    """ReadError naming the longest sentence span when it is longer than ``limit``."""
    if limit is None or not spans:
        return
    a, b = max(spans, key=lambda span: span[1] - span[0])
    if b - a <= limit:
        return
    setting = f"longer than askdoc reads (max_line_chars = {limit:,} characters)"
    if "\n" not in text[a:b]:
        line_start = text.rfind("\n", 0, a) + 1
        line_end = text.find("\n", b)
        length = (len(text) if line_end < 0 else line_end) - line_start
        raise ReadError(f"a single line of {_chars(length)}: {setting}")
    raise ReadError(f"{_chars(b - a)} without a sentence or paragraph break: {setting}")


def _chars(length: int) -> str:
    if length >= 1 << 20:
        return f"{length / (1 << 20):.3g} MB"
    return f"{length:,} characters"


def _count_batched(count: TokenCounter, texts: list[str]) -> list[int]:
    """``count(texts)`` in calls of at most COUNT_BATCH_CHARS characters."""
    sizes: list[int] = []
    batch: list[str] = []
    chars = 0
    for text in texts:
        if batch and chars + len(text) > COUNT_BATCH_CHARS:
            sizes.extend(count(batch))
            batch, chars = [], 0
        batch.append(text)
        chars += len(text)
    if batch:
        sizes.extend(count(batch))
    return sizes


class _Lines:
    """1-based line numbers of offsets asked in nearly increasing order: each answer counts
    only the newlines since the previous one (counting from the start each time made a big
    file's passages cost time quadratic in its size)."""

    def __init__(self, text: str) -> None:
        self.text, self.offset, self.line = text, 0, 1

    def at(self, offset: int) -> int:
        offset = max(0, offset)
        if offset >= self.offset:
            self.line += self.text.count("\n", self.offset, offset)
        else:
            self.line -= self.text.count("\n", offset, self.offset)
        self.offset = offset
        return self.line


def _fit_heading(heading: str, count: TokenCounter) -> str:
    if not heading or count([heading])[0] <= HEADING_TOKEN_CAP:
        return heading
    last = heading.split(" > ")[-1]
    return last if count([last])[0] <= HEADING_TOKEN_CAP else ""


def _bounded_sentences(
    text: str, start: int, end: int, count: TokenCounter, budget: int, limit: int | None = None
) -> list[tuple[int, int, int]]:
    """Sentence spans with their token counts; sentences over ``budget`` are cut into pieces.
    ReadError when one is longer than ``limit`` characters."""
    spans = split_sentences(text, start, end)
    _check_length(text, spans, limit)
    sizes = _count_batched(count, [text[a:b] for a, b in spans])
    result: list[tuple[int, int, int]] = []
    for (a, b), size in zip(spans, sizes, strict=True):
        if size <= budget:
            result.append((a, b, size))
        else:
            result.extend(_cut_long(text, a, b, count, budget))
    return result


def _cut_long(
    text: str, start: int, end: int, count: TokenCounter, budget: int
) -> list[tuple[int, int, int]]:
    """Cut an over-long sentence at word boundaries (or inside a giant word) to fit ``budget``."""
    words: list[Span] = []
    for match in re.finditer(r"\S+", text[start:end]):
        a, b = start + match.start(), start + match.end()
        step = max(1, budget // 2)
        words.extend((i, min(i + step, b)) for i in range(a, b, step))
    sizes = _count_batched(count, [text[a:b] for a, b in words])
    pieces: list[tuple[int, int, int]] = []
    piece_start, piece_end, piece_size = words[0][0], words[0][0], 0
    for (a, b), size in zip(words, sizes, strict=True):
        if piece_size and piece_size + size > budget:
            pieces.append((piece_start, piece_end, piece_size))
            piece_start, piece_size = a, 0
        piece_end, piece_size = b, piece_size + size
    pieces.append((piece_start, piece_end, piece_size))
    # Adjacent cut pieces of one word may merge into more tokens than their sum: re-count.
    exact = _count_batched(count, [text[a:b] for a, b, _ in pieces])
    return [(a, b, n) for (a, b, _), n in zip(pieces, exact, strict=True)]


def _pack(
    spans: list[tuple[int, int, int]],
    count: TokenCounter,
    text: str,
    budget: int,
    overlap: int,
) -> list[Span]:
    """Greedily pack sentences into passages of at most ``budget`` tokens, with overlap."""
    passages: list[Span] = []
    first = 0
    while first < len(spans):
        last, total = first, spans[first][2]
        while last + 1 < len(spans) and total + spans[last + 1][2] <= budget:
            last += 1
            total += spans[last][2]
        while last > first and count([text[spans[first][0] : spans[last][1]]])[0] > budget:
            last -= 1
        passages.append((spans[first][0], spans[last][1]))
        if last + 1 >= len(spans):
            break
        first = _overlap_start(spans, first, last, overlap)
    return passages


def _overlap_start(spans: list[tuple[int, int, int]], first: int, last: int, overlap: int) -> int:
    """Where the next passage starts: trailing sentences of this one within ``overlap`` tokens."""
    start, carried = last + 1, 0
    while start - 1 > first and carried + spans[start - 1][2] <= overlap:
        start -= 1
        carried += spans[start][2]
    return start


def _make_chunk(
    document: Document, ordinal: int, start: int, end: int, heading: str, lines: _Lines
) -> Chunk:
    text = document.text
    return Chunk(
        doc_path=document.path,
        ordinal=ordinal,
        text=text[start:end],
        start=start,
        end=end,
        line_start=lines.at(start),
        line_end=lines.at(max(start, end - 1)),
        page=page_at(document.page_starts, start),
        heading=heading,
    )
