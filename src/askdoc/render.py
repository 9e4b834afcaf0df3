"""Answers and reports as terminal text (rich ``Text``, never markup) and as JSON-ready dicts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.text import Text

from askdoc.readers import clean_text
from askdoc.types import Answer, Source

NOT_FOUND = "Not found in the documents."
SOURCES_TITLE = "Sources"
CLOSEST_TITLE = "Closest passages (none of them answers it)"
READ_AS = "↳ read as: "
"""Shown before the rewritten question of a follow-up."""

JSON_VERSION = 1


def display_path(corpus: Path, path: str) -> str:
    """How a document is named to the user: the corpus folder as given, then the file."""
    return clean_text(os.path.join(str(corpus), path)).replace("\n", "\\n")


def safe(text: str) -> str:
    """Document text made safe for a terminal (control characters removed, again)."""
    return clean_text(text)


def source_location(corpus: Path, source: Source, cited: bool = False) -> str:
    """The source's place as the user names it; ``cited``: the supporting sentence's own line
    rather than the passage's range."""
    location = source.cited_location if cited else source.location
    return display_path(corpus, source.path) + location[len(source.path) :]


CONTEXT_CHARS = 100
"""A collapsed source shows at most this much of the sentence before its supporting one."""
GAP_CHARS = 200
"""Between two supporting sentences of one source, longer text is shown as " … "."""
Segment = tuple[str, bool]
"""A piece of a source's text on one line, and whether it is a supporting sentence."""


def one_line(text: str) -> str:
    """Untrusted text on one line: control characters removed, runs of whitespace one space."""
    return " ".join(safe(text).split())


def excerpt(source: Source, context_chars: int = CONTEXT_CHARS) -> list[Segment]:
    """The collapsed form of a source: the sentence before the first supporting sentence (its
    end, at most ``context_chars``, "…" in front when cut), then the supporting sentences (the
    text between two of them when short, else " … "). Without a supporting sentence: the start
    of the passage."""
    body = source.text
    spans = sorted(
        (max(0, a - source.start), min(len(body), b - source.start)) for a, b in source.marked
    )
    spans = [(a, b) for a, b in spans if a < b]
    if not spans:
        return [(_clip_end(body, context_chars * 2), False)]
    from askdoc.chunking import split_sentences

    first = spans[0][0]
    before = [(a, b) for a, b in split_sentences(body[:first]) if body[a:b].strip()]
    out: list[Segment] = []
    if before:
        a, b = before[-1]
        context = one_line(body[a:b])
        if len(context) > context_chars:
            tail = context[-context_chars:]
            context = "…" + (tail.split(" ", 1)[1] if " " in tail else tail)
        elif a > 0:
            context = "… " + context
        out.append((context + " ", False))
    elif first > 0:
        out.append(("… ", False))
    pos = None
    for a, b in spans:
        if pos is not None:
            gap = one_line(body[pos:a])
            out.append(
                (
                    f" {gap} " if gap and len(gap) <= GAP_CHARS else (" " if not gap else " … "),
                    False,
                )
            )
        out.append((one_line(body[a:b]), True))
        pos = b
    if pos is not None and body[pos:].strip():
        out.append((" …", False))
    return out


def _clip_end(text: str, limit: int) -> str:
    line = one_line(text)
    if len(line) <= limit:
        return line
    head = line[:limit]
    return (head.rsplit(" ", 1)[0] if " " in head else head) + "…"


def answer_text(
    answer: Answer, corpus: Path, show_scores: bool = True, passages: bool = False
) -> Group:
    """The answer sentences with [n], then each source under the line of its supporting
    sentence, collapsed to that sentence with a little context (``passages``: the whole
    passage). A refusal says so and lists the closest passages, one line each."""
    out = Text()
    if answer.found:
        out.append("Answer\n", style="bold")
        for sentence in answer.sentences:
            out.append("  ")
            out.append(safe(sentence.text))
            out.append(f" [{sentence.source}]\n", style="bold cyan")
        if answer.message:
            out.append(f"note: {answer.message}\n", style="dim")
    else:
        out.append(answer.message or NOT_FOUND, style="bold yellow")
        out.append("\n")
    if answer.searched != answer.question:
        out.append(f"{READ_AS}{one_line(answer.searched)}\n", style="dim italic")
    if not answer.sources:
        return Group(out)
    if not answer.found and not passages:
        out.append(f"\n{CLOSEST_TITLE}", style="bold")
        return Group(out, *(closest_line(s, corpus, show_scores) for s in answer.sources))
    out.append(f"\n{SOURCES_TITLE if answer.found else CLOSEST_TITLE}\n", style="bold")
    for source in answer.sources:
        out.append(f"[{source.number}] ", style="bold cyan")
        out.append(source_location(corpus, source, cited=True), style="green")
        if passages and source.location != source.cited_location:
            out.append(f"  (passage {source.location.rpartition(':')[2]})", style="dim")
        if show_scores:
            out.append(f"  score {source.score:.2f}", style="dim")
        out.append("\n")
        if passages:
            out.append_text(passage_text(source, indent="    "))
        else:
            out.append("    ")
            for text, marked in excerpt(source):
                out.append(text, style="reverse bold" if marked else "dim")
        out.append("\n")
    return Group(out)


def closest_line(source: Source, corpus: Path, show_scores: bool = True) -> Text:
    """``[n] path:L3  score 0.12  start of its best sentence…`` on one line (cut to the
    terminal's width when printed)."""
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(f"[{source.number}] ", style="bold cyan")
    line.append(source_location(corpus, source, cited=True), style="green")
    del show_scores  # a weak match's score says nothing useful; the line is for its text
    best = next((t for t, marked in excerpt(source, 0) if marked), "")
    line.append("  " + _clip_end(best or source.text, 200))
    return line


def passage_text(source: Source, indent: str = "") -> Text:
    """The passage, with the supporting sentences in reverse video."""
    text = Text(indent)
    body = source.text
    pos = 0
    for start, end in source.marked:
        a = max(pos, min(len(body), start - source.start))
        b = max(a, min(len(body), end - source.start))
        text.append(safe(body[pos:a]).replace("\n", "\n" + indent))
        text.append(safe(body[a:b]).replace("\n", "\n" + indent), style="reverse bold")
        pos = b
    text.append(safe(body[pos:]).replace("\n", "\n" + indent))
    return text


def answer_json(answer: Answer, corpus: Path) -> dict[str, Any]:
    """The documented JSON form of an answer (docs/json.md)."""
    by_number = {s.number: s for s in answer.sources}
    return {
        "version": JSON_VERSION,
        "question": answer.question,
        "searched": answer.searched,
        "found": answer.found,
        "confidence": round(answer.confidence, 4),
        "message": answer.message,
        "answer": [
            {
                "text": s.text,
                "source": s.source,
                "path": display_path(corpus, by_number[s.source].path),
                "line": s.line,
                "start": s.start,
                "end": s.end,
                "score": round(s.score, 4),
            }
            for s in answer.sentences
        ],
        "sources": [source_json(s, corpus) for s in answer.sources],
        "evidence": {k: round(v, 4) for k, v in answer.evidence.items()},
        "timings_ms": {k: round(v * 1000, 2) for k, v in answer.timings.items()},
    }


def source_json(source: Source, corpus: Path) -> dict[str, Any]:
    highlight = None
    if source.highlight is not None:
        a, b = source.highlight
        highlight = {"start": a, "end": b, "text": source.text[a - source.start : b - source.start]}
    return {
        "id": source.number,
        "path": display_path(corpus, source.path),
        "document": source.path,
        "location": source_location(corpus, source),
        "cited_location": source_location(corpus, source, cited=True),
        "line_start": source.line_start,
        "line_end": source.line_end,
        "page": source.page,
        "heading": source.heading,
        "start": source.start,
        "end": source.end,
        "text": source.text,
        "score": round(source.score, 4),
        "highlight": highlight,
        "highlights": [
            {"start": a, "end": b, "text": source.text[a - source.start : b - source.start]}
            for a, b in source.highlights
        ],
    }
