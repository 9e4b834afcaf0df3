"""Frozen records that flow through askdoc: documents, chunks, hits and answers."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

NOT_FOUND = "Not found in the documents."
"""What askdoc says when the documents do not answer (``Answer.message`` of a refusal)."""


@dataclass(frozen=True)
class Heading:
    """A heading found in a document: where it starts, its level (1 = top) and its title."""

    offset: int
    level: int
    title: str


@dataclass(frozen=True)
class Document:
    """A document's clean text (control characters removed) and what we know of its structure.

    ``page_starts`` holds the character offset at which each page begins (PDF only; page 1 is at
    index 0). ``notes`` records anything worth reporting, e.g. a fallback text encoding.
    """

    path: str
    text: str
    kind: str
    headings: tuple[Heading, ...] = ()
    page_starts: tuple[int, ...] = ()
    notes: tuple[str, ...] = ()

    def line_at(self, offset: int) -> int:
        """1-based line number of the character at ``offset``."""
        return line_at(self.text, offset)

    def page_at(self, offset: int) -> int | None:
        """1-based page number of the character at ``offset``, or None when there are no pages."""
        return page_at(self.page_starts, offset)


def line_at(text: str, offset: int) -> int:
    """1-based line number of ``offset`` in ``text``."""
    return text.count("\n", 0, max(0, offset)) + 1


def page_at(page_starts: tuple[int, ...], offset: int) -> int | None:
    """1-based page of ``offset`` given the page start offsets, or None without pages."""
    if not page_starts:
        return None
    return max(1, bisect_right(page_starts, offset))


@dataclass(frozen=True)
class Chunk:
    """A passage of a document: ``text == document.text[start:end]`` always holds."""

    doc_path: str
    ordinal: int
    text: str
    start: int
    end: int
    line_start: int
    line_end: int
    page: int | None = None
    heading: str = ""

    def embed_text(self) -> str:
        """What the embedding model sees: the heading path (as context) and the passage."""
        return f"{self.heading}\n{self.text}" if self.heading else self.text


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as stored in the index, with its row id."""

    id: int
    doc_id: int
    chunk: Chunk


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its fused score and the rank it had in each signal (1-based)."""

    chunk_id: int
    chunk: Chunk
    score: float
    dense_rank: int | None = None
    lexical_rank: int | None = None
    dense_score: float | None = None


@dataclass(frozen=True)
class Source:
    """A numbered source shown under an answer.

    ``start``/``end`` is the passage's span in the document text; ``highlight`` is the span of the
    supporting sentence inside the document text (absolute offsets), if one was chosen: the first
    answer sentence citing this source (else its best candidate sentence). ``highlights`` holds
    every answer sentence citing it, in document order.
    """

    number: int
    path: str
    text: str
    start: int
    end: int
    line_start: int
    line_end: int
    page: int | None
    heading: str
    score: float
    highlight: tuple[int, int] | None = None
    highlights: tuple[tuple[int, int], ...] = ()

    @property
    def marked(self) -> tuple[tuple[int, int], ...]:
        """The spans to show highlighted: every answer sentence, else the best candidate."""
        if self.highlights:
            return self.highlights
        return (self.highlight,) if self.highlight is not None else ()

    def line_of(self, offset: int) -> int:
        """1-based line, in the document, of the absolute ``offset`` inside this passage."""
        inside = max(0, min(len(self.text), offset - self.start))
        return self.line_start + self.text.count("\n", 0, inside)

    @property
    def cited_location(self) -> str:
        """Where the supporting sentence is: ``path:L8`` (its own first line; ``path:L8-9``
        when it spans lines), ``path:p3`` for paged documents; the passage's location when no
        sentence was chosen."""
        marked = self.marked
        if self.page is not None or not marked:
            return self.location
        first = self.line_of(marked[0][0])
        last = self.line_of(max(marked[-1][0], marked[-1][1] - 1))
        return f"{self.path}:L{first}" + (f"-{last}" if last != first else "")

    @property
    def location(self) -> str:
        """``path:L8`` (or ``path:L8-12``), ``path:p3`` for paged documents."""
        if self.page is not None:
            return f"{self.path}:p{self.page}"
        if self.line_end != self.line_start:
            return f"{self.path}:L{self.line_start}-{self.line_end}"
        return f"{self.path}:L{self.line_start}"


@dataclass(frozen=True)
class AnswerSentence:
    """A sentence of the answer: verbatim text of source ``source`` at ``start:end`` of its file."""

    text: str
    source: int
    start: int
    end: int
    line: int
    score: float
    line_end: int = 0
    """Last line of the sentence (0 means the same as ``line``)."""

    @property
    def lines(self) -> tuple[int, int]:
        return (self.line, self.line_end or self.line)


@dataclass(frozen=True)
class Answer:
    """What askdoc says to a question: supporting sentences and the numbered sources."""

    question: str
    searched: str
    found: bool
    confidence: float
    sentences: tuple[AnswerSentence, ...] = ()
    sources: tuple[Source, ...] = ()
    message: str = ""
    timings: dict[str, float] = field(default_factory=dict, compare=False)
    evidence: dict[str, float] = field(default_factory=dict, compare=False)
    """What the decision to answer or refuse rested on (``refusal.Evidence``)."""
