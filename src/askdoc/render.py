"""Answers, build reports and index status as terminal text (rich ``Text``, never markup) and
answers as JSON-ready dicts: what the CLI prints and the TUI shows."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.text import Text

from askdoc.index.location import StoreLocation
from askdoc.ingest import split_sentences
from askdoc.text import clean_text, one_line
from askdoc.types import NOT_FOUND, Answer, Source

if TYPE_CHECKING:
    from askdoc.config import Settings
    from askdoc.engine import Status
    from askdoc.index.writer import BuildReport

SOURCES_TITLE = "Sources"
CLOSEST_TITLE = "Closest passages (none of them answers it)"
READ_AS = "↳ read as: "
"""Shown before the rewritten question of a follow-up."""

JSON_VERSION = 1
BUILD_STAGES = {
    "write": "writing documents",
    "read": "reading documents",
    "model": "loading the model",
    "embed": "embedding passages",
}
"""What each stage of a build's progress is called (``Progress`` callbacks name the stage)."""


def console(stderr: bool = False) -> Console:
    """The console the CLI prints through: no highlighting of numbers or paths, no wrapping of
    long lines into the next (a terminal wraps them itself; a pipe keeps them whole)."""
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


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


Piece = tuple[str, str]
"""A piece of a display line and its part ("number", "location", "note", "heading" or "text"):
the rule of what is shown is written once, here; each face styles the parts (``STYLES`` for
rich ``Text``; the TUI's ``tui.texts.STYLES``, in its theme's colours)."""
STYLES = {"number": "bold cyan", "location": "green", "note": "dim", "heading": "italic dim"}
"""The CLI's style of each part of a ``Piece`` ("text": none)."""
MARKED = "reverse bold"
"""The supporting sentences inside a passage or an excerpt."""


def styled(pieces: list[Piece], styles: Mapping[str, str] = STYLES) -> Text:
    """Pieces as rich ``Text`` (plain strings and our own styles: never markup)."""
    return Text.assemble(*[(text, styles.get(part, "")) for text, part in pieces])


def title_pieces(
    source: Source, corpus: Path, scores: bool, passage: bool = False, heading: bool = False
) -> list[Piece]:
    """``[1] corpus/file.txt:L8  passage L6-9  score 0.42  § Heading``: where the supporting
    sentence is; the passage's range too when ``passage`` (and it differs), its score when
    ``scores``, its heading when ``heading``."""
    pieces = [
        (f"[{source.number}] ", "number"),
        (source_location(corpus, source, cited=True), "location"),
    ]
    if passage and source.location != source.cited_location:
        pieces.append((f"  passage {source.location.rpartition(':')[2]}", "note"))
    if scores:
        pieces.append((f"  score {source.score:.2f}", "note"))
    if heading and source.heading:
        pieces.append((f"  § {one_line(source.heading)}", "heading"))
    return pieces


def closest_pieces(source: Source, corpus: Path, heading: bool = False) -> list[Piece]:
    """A weak match after a refusal, on one line: ``[n] path:L3  start of its best sentence…``
    (no score: a weak match's score says nothing useful)."""
    best = next((text for text, marked in excerpt(source, 0) if marked), "")
    title = title_pieces(source, corpus, False, heading=heading)
    return [*title, ("  " + _clip_end(best or source.text, 200), "text")]


CONTEXT_CHARS = 100
"""A collapsed source shows at most this much of the sentence before its supporting one."""
GAP_CHARS = 200
"""Between two supporting sentences of one source, longer text is shown as " … "."""
Segment = tuple[str, bool]
"""A piece of a source's text on one line, and whether it is a supporting sentence."""


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
            between = f" {gap} " if len(gap) <= GAP_CHARS else " … "
            out.append((between if gap else " ", False))
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
        return Group(out, *(closest_line(s, corpus) for s in answer.sources))
    out.append(f"\n{SOURCES_TITLE if answer.found else CLOSEST_TITLE}\n", style="bold")
    for source in answer.sources:
        out.append_text(styled(title_pieces(source, corpus, show_scores, passage=passages)))
        out.append("\n")
        if passages:
            out.append_text(passage_text(source, indent="    "))
        else:
            out.append("    ")
            for text, marked in excerpt(source):
                out.append(text, style=MARKED if marked else "dim")
        out.append("\n")
    return Group(out)


def closest_line(source: Source, corpus: Path) -> Text:
    """``closest_pieces`` on one line (cut to the terminal's width when printed)."""
    line = styled(closest_pieces(source, corpus))
    line.no_wrap, line.overflow = True, "ellipsis"
    return line


def passage_segments(source: Source) -> list[Segment]:
    """The whole passage cut at its supporting sentences, in order, each piece made safe: how a
    passage is highlighted (``askdoc ask --passages``, the TUI's opened source card)."""
    body = source.text
    out: list[Segment] = []
    pos = 0
    for start, end in source.marked:
        a = max(pos, min(len(body), start - source.start))
        b = max(a, min(len(body), end - source.start))
        out += [(safe(body[pos:a]), False), (safe(body[a:b]), True)]
        pos = b
    out.append((safe(body[pos:]), False))
    return out


def passage_text(source: Source, indent: str = "") -> Text:
    """The passage, with the supporting sentences in reverse video."""
    text = Text(indent)
    for piece, marked in passage_segments(source):
        text.append(piece.replace("\n", "\n" + indent), style=MARKED if marked else "")
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


def report_text(report: BuildReport, settings: Settings) -> Text:
    """What a build did (or, dry, would do): counts, then the paths changed, skipped or noted."""
    out = Text()
    verb = "Would index" if report.dry_run else "Indexed"
    where = StoreLocation.of(settings).describe(settings)
    out.append(f"{verb} {settings.corpus} into {where}", style="bold")
    out.append(f" in {report.seconds:.1f} s\n")
    if report.full:
        out.append("  full rebuild\n")
    counts = (
        f"  added {len(report.added)} · updated {len(report.updated)} · "
        f"removed {len(report.removed)} · renamed {len(report.renamed)} · "
        f"unchanged {report.unchanged} · skipped {len(report.skipped)}\n"
    )
    out.append(counts)
    if not report.dry_run:
        out.append(
            f"  {report.documents} documents, {report.chunks} passages "
            f"({report.embedded} embedded this run)\n"
        )
    for label, paths in (
        ("add", report.added),
        ("update", report.updated),
        ("remove", report.removed),
    ):
        if report.dry_run:
            for path in paths:
                out.append(f"  {label}: {display_path(settings.corpus, path)}\n")
    for old, new in report.renamed:
        out.append(f"  renamed: {safe(old)} -> {safe(new)}\n")
    for skipped in report.skipped:
        out.append(f"  skipped: {display_path(settings.corpus, skipped.path)}: ", style="yellow")
        out.append(safe(skipped.reason) + "\n")
    for note in report.notes:
        out.append(f"  note: {safe(note)}\n", style="dim")
    return out


def status_text(status: Status, device: str = "") -> Text:
    """``askdoc status``: the index's facts, the corpus drift since the last build and the files
    left out; ``device``: where the model will run (``embedder.device_hint``)."""
    out = Text()
    out.append("index   ", style="bold")
    out.append(f"{status.index}\n")
    out.append("corpus  ", style="bold")
    out.append(f"{status.corpus}\n")
    manifest = status.manifest
    if manifest is not None:
        built = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(manifest.built_at))
        out.append(f"documents {manifest.documents} · passages {manifest.chunks}\n")
        out.append(
            f"model   {manifest.model.get('name')} ({manifest.model.get('dimension')}-dim, "
            f"max {manifest.model.get('max_seq_length')} word-pieces)\n"
        )
        kind = (
            "store   Milvus"
            if manifest.faiss_kind == "milvus"
            else f"faiss   {manifest.faiss_kind}"
        )
        out.append(f"{kind} · generation {manifest.generation}\n")
        if device:
            out.append(f"device  {device}\n")
        out.append(f"built   {built}\n")
    if status.problem:
        out.append(f"problem {status.problem}\n", style="bold red")
    drift = status.drift
    if drift.any:
        out.append(
            "drift   the corpus changed since the last build (run `askdoc index`):\n",
            style="yellow",
        )
        for label, paths in (
            ("added", drift.added),
            ("changed", drift.changed),
            ("removed", drift.removed),
        ):
            for path in paths:
                out.append(f"  {label}: {display_path(status.corpus, path)}\n")
    elif manifest is not None and not status.problem:
        out.append("drift   none: the index matches the corpus\n")
    if status.skipped:
        out.append(
            f"skipped {len(status.skipped)} files left out of the index (each tried again "
            "when it changes):\n",
            style="yellow",
        )
        for skipped in status.skipped:
            out.append(f"  skipped: {display_path(status.corpus, skipped.path)}: ")
            out.append(safe(skipped.reason) + "\n")
    return out


@contextmanager
def progress_bars(
    enabled: bool, labels: Mapping[str, str] = BUILD_STAGES
) -> Iterator[Callable[[str, int, int], None] | None]:
    """Rich progress bars on stderr, one per stage named in ``progress(stage, done, total)``
    calls and labelled by ``labels`` (else the stage's name); None when not ``enabled`` (stderr
    is not a terminal)."""
    if not enabled:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console(stderr=True),
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(labels.get(stage, stage), total=total)
        bar.update(tasks[stage], completed=done, total=total)

    with bar:
        yield update
