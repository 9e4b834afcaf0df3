"""The CLI's commands: each takes the parsed arguments and the Settings, calls the library, prints
what it got (``render``) and returns the exit code."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, BinaryIO

from rich.text import Text

from askdoc.cli.watch import cmd_watch
from askdoc.config import Settings
from askdoc.device import device_hint
from askdoc.engine import Engine
from askdoc.errors import AskdocError, QuestionError
from askdoc.index.location import StoreLocation
from askdoc.render import (
    JSON_VERSION,
    answer_json,
    answer_text,
    console,
    progress_bars,
    report_text,
    status_text,
)


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    """``askdoc index`` (``--watch``: then keep the index current until Ctrl+C)."""
    if getattr(args, "watch", False):
        return cmd_watch(args, settings)
    engine = Engine(settings)
    with progress_bars(sys.stderr.isatty()) as progress:
        report = engine.build(
            full=args.full, dry_run=args.dry_run, wait=args.wait, progress=progress
        )
    print_notice(engine)
    console().print(report_text(report, settings), end="")
    return 0


def print_notice(engine: Engine) -> None:
    """The engine's one-line notice (the model runs on torch, not ONNX), on stderr."""
    if engine.notice:
        print(f"askdoc: {engine.notice}", file=sys.stderr)


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    engine = Engine(settings)
    if args.question == "-" or args.questions is not None:
        return cmd_ask_lines(engine, args)
    answer = engine.ask(args.question, k=args.k, mode=args.mode)
    print_notice(engine)
    if getattr(args, "generate", False):
        from askdoc.cli.generate import ask_generated

        return ask_generated(engine, answer, args, settings)
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


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    status = Engine(settings).status()
    console().print(status_text(status, device_hint(settings.backend)), end="")
    return 1 if status.manifest is None else 0


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from askdoc.index.repair import leftover_notes, repair_index
    from askdoc.index.verify import verify_index

    out = console()
    location = StoreLocation.of(settings)
    if location.milvus:
        return _verify_milvus(args, settings, location.describe(settings))
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


def _verify_milvus(args: argparse.Namespace, settings: Settings, where: str) -> int:
    from askdoc.index.milvus_verify import verify_milvus

    out = console()
    if getattr(args, "repair", False):
        out.print(Text(f"{where}: note: --repair has nothing to clean in Milvus", style="yellow"))
    problems = verify_milvus(settings)
    for problem in problems:
        out.print(Text(f"{where}: {problem}", style="red"))
    if not problems:
        out.print(Text(f"{where}: ok"))
    return 1 if problems else 0


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from askdoc.tui import run_app

    return run_app(settings, watch=getattr(args, "watch", False))
