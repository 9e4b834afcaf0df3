"""What the chat remembers: the input history and the transcript, exported as Markdown."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from askdoc.render import (
    CLOSEST_TITLE,
    NOT_FOUND,
    READ_AS,
    SOURCES_TITLE,
    display_path,
    one_line,
    safe,
    source_location,
)

if TYPE_CHECKING:
    from askdoc.index.writer import BuildReport
    from askdoc.types import Answer, AnswerSentence, Source


class History:
    """Questions asked, newest last; ``up``/``down`` walk them and keep the unsent draft."""

    def __init__(self, limit: int = 500) -> None:
        self.items: list[str] = []
        self.limit = limit
        self._pos: int | None = None
        self._draft = ""

    def add(self, question: str) -> None:
        if question and (not self.items or self.items[-1] != question):
            self.items.append(question)
            del self.items[: -self.limit]
        self._pos = None

    def up(self, current: str) -> str | None:
        """The previous question (None: already at the oldest, or nothing asked yet)."""
        if not self.items:
            return None
        if self._pos is None:
            self._draft = current
            self._pos = len(self.items)
        if self._pos == 0:
            return None
        self._pos -= 1
        return self.items[self._pos]

    def down(self) -> str | None:
        """The next question, then the draft again (None: not browsing the history)."""
        if self._pos is None:
            return None
        self._pos += 1
        if self._pos >= len(self.items):
            self._pos = None
            return self._draft
        return self.items[self._pos]


@dataclass
class Exchange:
    """A question and what came back: an answer, or an error message (or nothing yet)."""

    question: str
    answer: Answer | None = None
    error: str = ""


@dataclass
class BuildEntry:
    """A build of the index run from the chat."""

    report: BuildReport


Entry = Exchange | BuildEntry


def export_name(now: float | None = None) -> str:
    """``askdoc-transcript-YYYYmmdd-HHMMSS.md`` for the given (or current) time."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    return f"askdoc-transcript-{stamp}.md"


def sentence_ref(sentence: AnswerSentence, source: Source | None, corpus: Path) -> str:
    """``corpus/file.txt:L8`` (``:p3`` for paged documents) for one answer sentence."""
    if source is None:
        return f"[{sentence.source}]"
    where = f"p{source.page}" if source.page is not None else f"L{sentence.line}"
    return f"{display_path(corpus, source.path)}:{where}"


def _quote(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in safe(text).split("\n"))


def exchange_markdown(exchange: Exchange, corpus: Path, show_scores: bool = True) -> list[str]:
    out = [f"## Q: {one_line(exchange.question)}", ""]
    answer = exchange.answer
    if answer is None:
        out += [f"*Not answered: {one_line(exchange.error or 'no answer')}*", ""]
        return out
    if answer.searched != answer.question:
        out += [f"*{READ_AS}{one_line(answer.searched)}*", ""]
    by_number = {s.number: s for s in answer.sources}
    if answer.found:
        for sentence in answer.sentences:
            ref = sentence_ref(sentence, by_number.get(sentence.source), corpus)
            out.append(f"- {one_line(sentence.text)} [{sentence.source}] ({ref})")
        if answer.message:
            out += ["", f"*note: {one_line(answer.message)}*"]
    else:
        out.append(f"**{one_line(answer.message or NOT_FOUND)}**")
    if answer.sources:
        title = SOURCES_TITLE if answer.found else CLOSEST_TITLE
        out += ["", f"### {title}", ""]
    for source in answer.sources:
        score = f" · score {source.score:.2f}" if show_scores else ""
        out += [f"[{source.number}] {source_location(corpus, source)}{score}", ""]
        out += [_quote(source.text), ""]
    out.append("")
    return out


def to_markdown(
    entries: Sequence[Entry], corpus: Path, now: float | None = None, show_scores: bool = True
) -> str:
    """The transcript as Markdown; every citation is a ``path:line`` (or ``path:pN``) reference."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() if now is None else now))
    out = ["# askdoc transcript", "", f"Corpus: {display_path(corpus, '')} · exported {when}", ""]
    for entry in entries:
        if isinstance(entry, Exchange):
            out += exchange_markdown(entry, corpus, show_scores)
        else:
            report = entry.report
            out += [
                "## Index rebuilt",
                "",
                f"{report.documents} documents, {report.chunks} passages; added "
                f"{len(report.added)}, updated {len(report.updated)}, removed "
                f"{len(report.removed)}, skipped {len(report.skipped)}.",
                "",
            ]
    return "\n".join(out).rstrip("\n") + "\n"
