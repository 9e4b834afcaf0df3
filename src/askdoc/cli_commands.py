"""The CLI's commands. Each takes parsed arguments and Settings and returns an exit code."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from rich.console import Console
from rich.text import Text

from askdoc.config import Settings
from askdoc.device import device_hint
from askdoc.engine import Engine, Status
from askdoc.errors import AskdocError, QuestionError
from askdoc.indexer import BuildReport, Progress
from askdoc.render import JSON_VERSION, answer_json, answer_text, display_path, safe


def console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


@contextmanager
def build_progress(enabled: bool) -> Iterator[Progress | None]:
    """A rich progress bar for reading and embedding (on stderr, only on a terminal)."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as RichProgress

    bar = RichProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console(stderr=True),
        transient=True,
    )
    tasks: dict[str, Any] = {}
    labels = {
        "read": "reading documents",
        "model": "loading the model",
        "embed": "embedding passages",
    }

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(labels.get(stage, stage), total=total)
        bar.update(tasks[stage], completed=done, total=total)

    with bar:
        yield update


def report_text(report: BuildReport, settings: Settings) -> Text:
    out = Text()
    verb = "Would index" if report.dry_run else "Indexed"
    out.append(f"{verb} {settings.corpus} into {settings.index}", style="bold")
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


def print_notice(engine: Engine) -> None:
    """The engine's one-line notice (the model runs on torch, not ONNX), on stderr."""
    if engine.notice:
        print(f"askdoc: {engine.notice}", file=sys.stderr)


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    engine = Engine(settings)
    with build_progress(sys.stderr.isatty()) as progress:
        report = engine.build(
            full=args.full, dry_run=args.dry_run, wait=args.wait, progress=progress
        )
    print_notice(engine)
    console().print(report_text(report, settings), end="")
    return 0


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    engine = Engine(settings)
    if args.question == "-" or args.questions is not None:
        return cmd_ask_lines(engine, args)
    answer = engine.ask(args.question, k=args.k, mode=args.mode)
    print_notice(engine)
    if args.json:
        print(json.dumps(answer_json(answer, settings.corpus), ensure_ascii=False, indent=2))
    else:
        passages = bool(getattr(args, "passages", False))
        console().print(answer_text(answer, settings.corpus, passages=passages), end="")
    return 0


def cmd_ask_lines(engine: Engine, args: argparse.Namespace) -> int:
    """``askdoc ask -`` / ``--questions FILE``: one JSON object per question line, written as
    soon as it is answered; a failed question gives ``{"version", "question", "error"}`` and the
    rest go on. Exit 1 when any failed. The index and model load first: a missing index stops
    everything before any question is read."""
    engine.load()
    source = sys.stdin.buffer if args.questions is None else _open_questions(args.questions)
    asked = failed = 0
    try:
        for raw in iter(source.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if not line.strip():
                continue  # blank lines separate questions; they are not questions
            asked += 1
            record = answer_line(engine, line, args.k, args.mode)
            failed += "error" in record
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
            sys.stdout.flush()  # a script (or an editor) waiting for this answer gets it now
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    if failed:
        print(f'askdoc: {failed} of {asked} questions failed (see their "error")', file=sys.stderr)
    return 1 if failed else 0


def _open_questions(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as exc:
        raise QuestionError(f"cannot read questions from {path}: {exc.strerror}") from None


def answer_line(engine: Engine, question: str, k: int | None, mode: str | None) -> dict[str, Any]:
    """The docs/json.md object for one question, or ``{version, question, error}``."""
    try:
        answer = engine.ask(question, k=k, mode=mode)
    except AskdocError as exc:
        return {"version": JSON_VERSION, "question": question, "error": " ".join(str(exc).split())}
    return answer_json(answer, engine.settings.corpus)


def status_text(status: Status, backend: str = "onnx") -> Text:
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
        out.append(f"faiss   {manifest.faiss_kind} · generation {manifest.generation}\n")
        out.append(f"device  {device_hint(backend)}\n")
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


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    status = Engine(settings).status()
    console().print(status_text(status, settings.backend), end="")
    return 1 if status.manifest is None else 0


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from askdoc.repair import leftover_notes, repair_index
    from askdoc.verify import verify_index

    out = console()
    if getattr(args, "repair", False):
        for done in repair_index(settings.index):
            out.print(Text(f"{settings.index}: {done}"))
    problems = verify_index(settings.index)
    for problem in problems:
        out.print(Text(f"{settings.index}: {problem}", style="red"))
    if not problems:
        out.print(Text(f"{settings.index}: ok"))
    for note in leftover_notes(settings.index):
        out.print(Text(f"{settings.index}: note: {note}", style="yellow"))
    return 1 if problems else 0


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from askdoc.tui import run_app

    return run_app(settings, watch=getattr(args, "watch", False))
