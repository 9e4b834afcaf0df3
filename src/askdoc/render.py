"""Answers and reports as terminal text (rich ``Text``, never markup) and as JSON-ready dicts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.text import Text

from askdoc.readers import clean_text
from askdoc.types import Answer, Source

JSON_VERSION = 1


def display_path(corpus: Path, path: str) -> str:
    """How a document is named to the user: the corpus folder as given, then the file."""
    return clean_text(os.path.join(str(corpus), path)).replace("\n", "\\n")


def safe(text: str) -> str:
    """Document text made safe for a terminal (control characters removed, again)."""
    return clean_text(text)


def source_location(corpus: Path, source: Source) -> str:
    base = display_path(corpus, source.path)
    return base + source.location[len(source.path) :]


def answer_text(answer: Answer, corpus: Path, show_scores: bool = True) -> Text:
    """The answer, then the numbered sources with the supporting sentence highlighted."""
    out = Text()
    if answer.found:
        out.append("Answer\n", style="bold")
        for sentence in answer.sentences:
            out.append("  ")
            out.append(safe(sentence.text))
            out.append(f" [{sentence.source}]\n", style="bold cyan")
    else:
        out.append(answer.message or "Not found in the documents.", style="bold yellow")
        out.append("\n")
    if answer.found and answer.message:
        out.append(f"note: {answer.message}\n", style="dim")
    if answer.sources:
        title = "Sources" if answer.found else "Nearest passages (weak matches)"
        out.append(f"\n{title}\n", style="bold")
    for source in answer.sources:
        out.append(f"[{source.number}] ", style="bold cyan")
        out.append(source_location(corpus, source), style="green")
        if show_scores:
            out.append(f"  score {source.score:.2f}", style="dim")
        out.append("\n")
        out.append_text(passage_text(source, indent="    "))
        out.append("\n")
    return out


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
