"""``askdoc eval``: parse the options, prepare the index, run the evaluation, print and write
the reports, and turn missed thresholds into exit code 1."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from askdoc.config import MODES, Settings
from askdoc.engine import Engine, refusal_model
from askdoc.errors import EvalError
from askdoc.index.location import StoreLocation
from askdoc.refusal import RefusalModel
from askdoc.render import BUILD_STAGES, console, progress_bars

DEFAULT_CACHE = Path(".cache/askdoc-eval")
EXAMPLES = """examples:
  askdoc eval eval/sample.jsonl                       the configured index (askdoc index first)
  askdoc eval eval/pydoc.jsonl --corpus eval/pydoc-corpus
                                                      another folder, indexed into --cache
  askdoc eval qa.yaml --modes dense,lexical,hybrid    compare retrieval modes in one run
  askdoc eval qa.jsonl --json new.json --compare old.json --min hit@5=0.9
  askdoc eval --beir scifact                          a BEIR folder (corpus, queries, qrels)
  askdoc eval my-questions.jsonl --calibrate          fit when askdoc refuses to your questions
                                                      and write it into askdoc.toml

thresholds take the metric names of the summary (hit@1, mrr@10, ndcg@10, answer_contains,
citation_accuracy, refusal_recall, latency_p95_ms, ...); a missed one makes the exit code 1.
See docs/evaluation.md."""

make_engine: Callable[[Settings], Engine] = Engine
"""How the command gets its engine (tests put a fake embedder in here)."""


def add_eval_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "eval",
        parents=[common],
        help="measure answers against a Q&A file or a BEIR benchmark",
        description="Run a Q&A file (JSONL or YAML) or a BEIR folder through askdoc and report "
        "retrieval, answer, citation, refusal and latency metrics. By default the configured "
        "index is used as it is; with --corpus DIR that folder is indexed (incrementally) into "
        "the --cache folder, keyed by its absolute path.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", nargs="?", type=Path, help="Q&A file (.jsonl, .yaml, .json)")
    p.add_argument("--beir", metavar="DIR", type=Path, help="run a BEIR benchmark folder instead")
    p.add_argument("--split", default="test", help="BEIR qrels split (default: test)")
    p.add_argument(
        "--mode",
        dest="eval_modes",
        action="append",
        choices=MODES,
        help="retrieval mode; repeat to compare modes (default: the configured mode)",
    )
    p.add_argument("--modes", metavar="LIST", help="comma-separated modes: dense,lexical,hybrid")
    p.add_argument(
        "-k",
        "--k",
        dest="k",
        type=int,
        metavar="N",
        help="passages judged by recall@N and passage_contains (default: top_k, 5); "
        "at least 10 are always retrieved",
    )
    p.add_argument("--json", dest="json_out", metavar="FILE", type=Path, help="write JSON")
    p.add_argument("--markdown", metavar="FILE", type=Path, help="write Markdown")
    p.add_argument("--compare", metavar="OLD.json", type=Path, help="show changes since a report")
    for kind, word in (("min", "at least"), ("max", "at most")):
        p.add_argument(
            f"--{kind}",
            dest=f"{kind}_thresholds",
            action="append",
            default=[],
            metavar="METRIC=VALUE",
            help=f"exit 1 unless METRIC is {word} VALUE in every mode (repeatable)",
        )
    p.add_argument(
        "--cache",
        metavar="DIR",
        type=Path,
        default=DEFAULT_CACHE,
        help=f"where --corpus and --beir indexes are kept (default: {DEFAULT_CACHE})",
    )
    p.add_argument("--limit", type=int, metavar="N", help="run only the first N questions")
    p.add_argument(
        "--generate",
        action="store_true",
        help="also ask the [llm] language model each question and compare its checked answers "
        "with the quoted ones (--llm-url URL or ASKDOC_LLM_URL)",
    )
    p.add_argument("--llm-url", metavar="URL", help="OpenAI-compatible server (ASKDOC_LLM_URL)")
    p.add_argument("--summary-only", action="store_true", help="no per-question tables")
    p.add_argument(
        "--calibrate",
        action="store_true",
        help="fit the refusal settings (min_confidence; the evidence weights too with at least "
        "10 answerable and 10 unanswerable questions) to this Q&A file, show the precision/"
        "recall trade-off, and write them into askdoc.toml (--config)",
    )


def chosen_modes(args: argparse.Namespace, settings: Settings) -> list[str]:
    modes = list(args.eval_modes or [])
    for mode in (args.modes or "").split(","):
        if mode.strip() and mode.strip() not in MODES:
            raise EvalError(f"--modes: unknown mode {mode.strip()!r} (known: {', '.join(MODES)})")
        modes.append(mode.strip())
    return list(dict.fromkeys(m for m in modes if m)) or [settings.mode]


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from askdoc.evaluation import data as eval_data
    from askdoc.evaluation import report as eval_report
    from askdoc.evaluation.run import evaluate

    modes = chosen_modes(args, settings)
    stages = {**BUILD_STAGES, **{mode: f"asking ({mode})" for mode in modes}}
    k = args.k if args.k is not None else settings.top_k
    if k < 1 or (args.limit is not None and args.limit < 1):
        raise EvalError("--k and --limit must be at least 1")
    thresholds = [
        eval_report.parse_threshold(text, k, kind)
        for kind in ("min", "max")
        for text in getattr(args, f"{kind}_thresholds")
    ]
    if getattr(args, "generate", False) and not settings.llm_url:
        raise EvalError("--generate needs a language model: --llm-url URL or ASKDOC_LLM_URL")
    old = eval_report.load_summaries(args.compare) if args.compare else None
    err = console(stderr=True)
    tty = sys.stderr.isatty()
    build = True
    if args.beir is not None:
        if args.file is not None:
            raise EvalError("give either a Q&A file or --beir DIR, not both")
        dataset, docs = eval_data.load_beir(args.beir, args.split)
        root = eval_data.beir_cache(args.beir, args.cache)
        with progress_bars(tty, stages) as progress:
            doc_ids = eval_data.write_beir_docs(docs, root / "docs", progress)
        dataset = replace(dataset, doc_ids=doc_ids)
        settings = replace(settings, corpus=root / "docs", index=root / "index")
        settings = _own_collection(settings)
    elif args.file is not None:
        dataset = eval_data.load_qa(args.file)
        build = "corpus" in vars(args)
        if build and "index" not in vars(args):
            settings = replace(settings, index=eval_data.corpus_cache(args.cache, settings.corpus))
            settings = _own_collection(settings)
    else:
        raise EvalError("give a Q&A file (askdoc eval FILE) or a BEIR folder (--beir DIR)")
    if args.limit is not None:
        dataset = replace(dataset, records=dataset.records[: args.limit])
    if args.calibrate:
        if args.beir is not None:
            raise EvalError("--calibrate needs a Q&A file with unanswerable questions, not BEIR")
        settings = replace(settings, min_confidence=0.0)  # every answer, to judge each one
    for problem in dataset.problems:
        err.print(Text(f"warning: {problem}", style="yellow"))

    engine = make_engine(settings)
    try:
        if build:
            with progress_bars(tty, stages) as progress:
                engine.build(progress=progress)
        elif engine.status().drift.any:
            err.print(Text("note: the corpus changed since the last `askdoc index`", style="dim"))
        with progress_bars(tty, stages) as progress:
            result = evaluate(engine, dataset, modes, k, progress)
        if engine.notice:
            err.print(Text(engine.notice, style="dim"))
        generated = None
        if getattr(args, "generate", False):
            from askdoc.evaluation.generated import run_generated

            with progress_bars(tty) as progress:
                generated = run_generated(engine, dataset, k, progress)
    finally:
        engine.close()
    if args.beir is not None:
        result = replace(result, corpus=str(args.beir))
    if args.calibrate:
        return calibrate_and_write(args, result, refusal_model(settings))
    changes = eval_report.compare(old, result) if old is not None else None
    missed = eval_report.check_thresholds(result, thresholds)

    out = Console(highlight=False)
    if not args.summary_only:
        for run in result.runs:
            out.print(eval_report.question_table(run, f"{result.dataset} · {run.mode}"))
    out.print(eval_report.summary_table(result, f"{result.dataset} · summary"))
    if changes:
        out.print(eval_report.compare_table(changes))
    if generated is not None:
        from askdoc.evaluation import generated as eval_generate

        summary = eval_generate.summarize_generated(generated)
        out.print(eval_generate.generated_table(summary, f"{result.dataset} · quoted vs generated"))
    if args.json_out is not None:
        data = eval_report.to_json(result, changes, missed)
        if generated is not None:
            data["generated"] = eval_generate.to_json(generated)
        write(args.json_out, json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    if args.markdown is not None:
        write(args.markdown, eval_report.to_markdown(result, changes, missed) + "\n")
    for message in missed:
        err.print(Text(f"threshold missed: {message}", style="bold red"))
    return 1 if missed else 0


def calibrate_and_write(args: argparse.Namespace, result: Any, current: RefusalModel) -> int:
    """Fit the refusal settings on the run's answers, show the trade-off, write askdoc.toml."""
    import os

    from askdoc.evaluation import calibrate
    from askdoc.evaluation import report as eval_report
    from askdoc.refusal import FEATURES

    run = result.runs[0]
    samples = [
        calibrate.Sample(
            tuple(r.evidence.get(f, 0.0) for f in FEATURES),
            not r.unanswerable,
            bool(r.answer_contains),
        )
        for r in run.results
        if r.evidence and not r.error
    ]
    if not any(s.answerable for s in samples) or all(s.answerable for s in samples):
        raise EvalError(
            "--calibrate needs both answerable and unanswerable questions "
            '(mark the latter with "unanswerable": true)'
        )
    result_cal = calibrate.calibrate(samples, current)
    path = args.config or Path(os.environ.get("ASKDOC_CONFIG") or "askdoc.toml")
    calibrate.write_settings(path, result_cal)
    out = Console(highlight=False)
    out.print(eval_report.calibration_table(result_cal, len(samples)))
    what = "weights fitted to your questions" if result_cal.fitted else "shipped weights kept"
    out.print(
        Text(
            f"min_confidence = {result_cal.threshold:.4f} ({what}) written to {path}",
            style="bold",
        )
    )
    if not result_cal.met_target:
        out.print(
            Text(
                "note: no threshold reached refusal precision 0.9 without losing answers; "
                "chose the best balance (F1)",
                style="yellow",
            )
        )
    return 0


def write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise EvalError(f"cannot write {path}: {exc.strerror}") from None


def _own_collection(settings: Settings) -> Settings:
    """In Milvus, an evaluated corpus gets its own collections (as it gets its own cache
    folder in the embedded store)."""
    from askdoc.evaluation.data import corpus_collection

    if not StoreLocation.of(settings).milvus:
        return settings
    name = corpus_collection(settings.milvus_collection, settings.corpus)
    return replace(settings, milvus_collection=name)
