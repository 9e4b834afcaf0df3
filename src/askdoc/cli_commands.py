"""The CLI's commands. Each takes parsed arguments and Settings and returns an exit code."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.text import Text

from askdoc.config import Settings
from askdoc.embedder import device_hint
from askdoc.engine import Engine, Status
from askdoc.indexer import BuildReport, Progress
from askdoc.render import answer_json, answer_text, display_path, safe


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


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    engine = Engine(settings)
    with build_progress(sys.stderr.isatty()) as progress:
        report = engine.build(
            full=args.full, dry_run=args.dry_run, wait=args.wait, progress=progress
        )
    console().print(report_text(report, settings), end="")
    return 0


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    engine = Engine(settings)
    answer = engine.ask(args.question, k=args.k, mode=args.mode)
    if getattr(args, "generate", False):
        from askdoc.cli_generate import ask_generated

        return ask_generated(engine, answer, args, settings)
    if args.json:
        print(json.dumps(answer_json(answer, settings.corpus), ensure_ascii=False, indent=2))
    else:
        passages = bool(getattr(args, "passages", False))
        console().print(answer_text(answer, settings.corpus, passages=passages), end="")
    return 0


def status_text(status: Status) -> Text:
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
        out.append(f"device  {device_hint()}\n")
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
    return out


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    status = Engine(settings).status()
    console().print(status_text(status), end="")
    return 1 if status.manifest is None else 0


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from askdoc.verify import verify_index

    problems = verify_index(settings.index)
    out = console()
    if not problems:
        out.print(Text(f"{settings.index}: ok"))
        return 0
    for problem in problems:
        out.print(Text(f"{settings.index}: {problem}", style="red"))
    return 1


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from askdoc.tui import run_app

    return run_app(settings)
