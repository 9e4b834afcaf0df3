"""Content built from untrusted text (documents, paths, questions): never parsed as markup.

Every function here returns ``Content`` or rich ``Text`` assembled from plain strings and our own
styles, after ``clean_text`` has removed terminal control characters.
"""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text
from textual.content import Content

from askdoc.render import (
    MARKED,
    Piece,
    closest_pieces,
    excerpt,
    one_line,
    passage_segments,
    safe,
    source_location,
    title_pieces,
)
from askdoc.types import AnswerSentence, Document, Source, line_at

MARK = "bold $text-accent"
HIGHLIGHT = MARKED
"""The supporting sentences (the CLI's style too)."""
PASSAGE = "on grey23"
"""Shading of the cited passage in the source viewer (a rich style: the viewer uses rich Text)."""
MAX_VIEW_LINES = 4000
"""The source viewer shows at most this many lines around the cited passage."""
STYLES = {
    "number": MARK,
    "location": "bold $text-success",
    "note": "$text-muted",
    "heading": "italic $text-muted",
}
"""The chat's style of each part of a ``render.Piece`` (render.STYLES are the CLI's)."""


def pieces_content(pieces: list[Piece]) -> Content:
    """Pieces (``render``'s rules) as Content, in the chat's styles."""
    return Content.assemble(*[(text, STYLES.get(part, "")) for text, part in pieces])


def plain(text: str) -> Content:
    """Untrusted text as Content: control characters stripped, markup left as it is."""
    return Content(safe(text))


def question_content(question: str) -> Content:
    return Content.assemble(("❯ ", "bold $accent"), (one_line(question), "bold"))


def sentence_content(sentence: AnswerSentence, where: str = "") -> Content:
    """An answer sentence followed by its ``[n]`` citation marker and where it is (``where``:
    the file and the sentence's own line)."""
    parts: list[tuple[str, str] | str] = [
        one_line(sentence.text),
        " ",
        (f"[{sentence.source}]", MARK),
    ]
    if where:
        parts.append((f" {one_line(where)}", "$text-muted"))
    return Content.assemble(*parts)


def source_title(
    source: Source, corpus: Path, show_scores: bool, expanded: bool = False
) -> Content:
    """``[1] corpus/file.txt:L8  score 0.42  § Heading`` (``render.title_pieces``); the
    passage's range too when ``expanded``."""
    return pieces_content(title_pieces(source, corpus, show_scores, expanded, heading=True))


def excerpt_content(source: Source) -> Content:
    """The collapsed source: the supporting sentence(s), highlighted, after a little context."""
    return Content.assemble(
        *[(text, HIGHLIGHT if marked else "$text-muted") for text, marked in excerpt(source)]
    )


def closest_content(source: Source, corpus: Path) -> Content:
    """A weak match after a refusal, on one line (``render.closest_pieces``)."""
    return pieces_content(closest_pieces(source, corpus, heading=True))


def passage_content(source: Source) -> Content:
    """The passage, with the supporting sentences highlighted (``render.passage_segments``)."""
    return Content.assemble(
        *[(text, HIGHLIGHT if marked else "") for text, marked in passage_segments(source)]
    )


def _line_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every line; a final newline does not start another line."""
    spans, start = [], 0
    for line in text.split("\n"):
        spans.append((start, start + len(line)))
        start += len(line) + 1
    if len(spans) > 1 and text.endswith("\n"):
        spans.pop()
    return spans


def _styled_line(line: str, start: int, marks: list[tuple[int, int, str]]) -> Text:
    """One document line as Text, with the parts inside ``marks`` (absolute spans) styled."""
    out = Text(safe(line), no_wrap=False, overflow="fold")
    end = start + len(line)
    for a, b, style in marks:
        lo, hi = max(a, start), min(b, end)
        if lo < hi:
            out.stylize(style, lo - start, hi - start)
    return out


def document_parts(document: Document, source: Source) -> tuple[Table, Table, Table, str]:
    """The document as three line-numbered tables (before, the cited lines, after) and a note
    when lines were left out. The cited lines are those of the supporting sentence (or of the
    whole passage when none was chosen); the passage is shaded, the sentence highlighted."""
    text = document.text
    if safe(text) != text:  # stored text is already clean; never show it if it is not
        text = safe(text)
    spans = _line_spans(text)
    a, b = cited_span(source)
    first = max(0, min(len(spans) - 1, line_at(text, a) - 1))
    last = max(first, min(len(spans) - 1, line_at(text, max(a, b - 1)) - 1))
    lo = max(0, first - MAX_VIEW_LINES // 2)
    hi = min(len(spans), max(last + 1, lo + MAX_VIEW_LINES))
    marks = [(source.start, source.end, PASSAGE)]
    marks += [(a, b, HIGHLIGHT) for a, b in source.marked]
    width = len(str(hi))
    page_lines = {document.line_at(p) for p in document.page_starts[1:]}

    def table(rows: range) -> Table:
        grid = Table.grid(padding=(0, 1), expand=True)
        grid.add_column(justify="right", style="dim", width=width, no_wrap=True)
        grid.add_column(ratio=1, overflow="fold")
        for i in rows:
            if i + 1 in page_lines:
                page = document.page_at(spans[i][0])
                grid.add_row(Text(""), Text(f"── page {page} ──", style="dim italic"))
            a, b = spans[i]
            grid.add_row(Text(str(i + 1)), _styled_line(text[a:b], a, marks))
        return grid

    skipped = []
    if lo > 0:
        skipped.append(f"{lo} lines above")
    if hi < len(spans):
        skipped.append(f"{len(spans) - hi} lines below")
    note = f"long document: {' and '.join(skipped)} not shown" if skipped else ""
    return table(range(lo, first)), table(range(first, last + 1)), table(range(last + 1, hi)), note


def cited_span(source: Source) -> tuple[int, int]:
    """From the first supporting sentence to the last, else the passage's span."""
    marked = source.marked
    if not marked:
        return (source.start, source.end)
    return (min(a for a, _ in marked), max(b for _, b in marked))


def viewer_title(source: Source, document: Document, corpus: Path) -> Content:
    parts: list[tuple[str, str] | str] = [
        (f"[{source.number}] ", MARK),
        (source_location(corpus, source), "bold"),
    ]
    marked = source.marked
    if marked:
        lines = sorted({document.line_at(a) for a, _ in marked})
        what = "cited sentence" if len(marked) == 1 else "cited sentences"
        where = "line" if len(lines) == 1 else "lines"
        numbers = ", ".join(map(str, lines))
        parts.append((f"  · {what} on {where} {numbers}", "$text-muted"))
    return Content.assemble(*parts)
