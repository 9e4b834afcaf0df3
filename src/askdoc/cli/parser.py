"""The command line's entry point: parse the arguments, run the command the table names, turn an
AskdocError into one line on stderr and exit code 1."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from askdoc import __version__
from askdoc.config import MODES, Settings, load_settings
from askdoc.errors import AskdocError
from askdoc.text import one_line

Handler = Callable[[argparse.Namespace, Settings], int]
"""Runs one command: the parsed arguments and the settings in, the exit code out."""

EPILOG = """examples:
  askdoc index                      build or update the index of corpus/
  askdoc ask "Who signed the pact?" answer with cited sources
  askdoc ask "..." --json           the same as a JSON object
  askdoc ask - < questions.txt      one question per line in, one JSON object per line out
  askdoc index --watch              keep the index current while files change (Ctrl+C stops)
  askdoc ask "..." --generate       also a language model's answer, each sentence checked
  askdoc status                     index facts and files changed since the last build
  askdoc verify --repair            check the index after cleaning up after failed builds
  askdoc index --store milvus-lite:askdoc.db   the index in Milvus Lite (docs/scale.md)
  askdoc                            open the chat UI

settings: askdoc.toml ([askdoc] table) < ASKDOC_* environment < flags."""


def build_parser() -> argparse.ArgumentParser:
    # Subcommands repeat the global options; SUPPRESS keeps a value given before the subcommand.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--corpus",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="documents folder (default: corpus)",
    )
    common.add_argument(
        "--index", metavar="DIR", default=argparse.SUPPRESS, help="index folder (default: index)"
    )
    common.add_argument(
        "--store",
        metavar="URI",
        default=argparse.SUPPRESS,
        help="where the index lives: milvus-lite:PATH.db or http://HOST:19530 for Milvus "
        "(default: the index folder; docs/scale.md)",
    )
    common.add_argument(
        "--config",
        metavar="FILE",
        type=Path,
        default=argparse.SUPPRESS,
        help="settings file (default: ./askdoc.toml)",
    )
    parser = argparse.ArgumentParser(
        prog="askdoc",
        description="Ask questions of your own documents, with exact, verbatim citations. Offline.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"askdoc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    index = sub.add_parser("index", parents=[common], help="build or update the index")
    index.add_argument("--full", action="store_true", help="re-embed every document")
    index.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    index.add_argument("--wait", action="store_true", help="wait for another build to finish")
    index.add_argument(
        "--watch",
        action="store_true",
        help="after the build, keep the index current as documents are added, changed, renamed "
        "or deleted, until Ctrl+C",
    )

    ask = sub.add_parser("ask", parents=[common], help="answer a question from the index")
    ask.add_argument(
        "question",
        nargs="?",
        help='the question, in quotes; "-" reads one question per line from stdin and writes '
        "one JSON object per line (JSON Lines)",
    )
    ask.add_argument(
        "--questions",
        metavar="FILE",
        type=Path,
        help="read one question per line from FILE (JSON Lines out, as with -)",
    )
    ask.add_argument("-k", type=int, metavar="N", help="passages to retrieve (default: 5)")
    ask.add_argument("--mode", choices=MODES, help="retrieval mode (default: hybrid)")
    ask.add_argument("--json", action="store_true", help="print a JSON object (docs/json.md)")
    ask.add_argument(
        "--passages",
        action="store_true",
        help="show each source's whole passage (default: its supporting sentence in context)",
    )
    ask.add_argument(
        "--generate",
        action="store_true",
        help="also ask the language model of the [llm] settings, and check every sentence it "
        "writes against the sources",
    )
    ask.add_argument(
        "--stream",
        action="store_true",
        help="with --generate: print the model's words as they come",
    )
    ask.add_argument("--llm-url", metavar="URL", help="OpenAI-compatible server (ASKDOC_LLM_URL)")
    ask.add_argument("--llm-model", metavar="NAME", help="model name (ASKDOC_LLM_MODEL)")

    sub.add_parser("status", parents=[common], help="index facts and corpus drift")
    verify = sub.add_parser("verify", parents=[common], help="check every file of the index")
    verify.add_argument(
        "--repair",
        action="store_true",
        help="first remove what failed builds left, merge the WAL, rebuild a damaged FAISS file",
    )
    chat = sub.add_parser("chat", parents=[common], help="open the chat UI (same as bare askdoc)")
    for owner in (parser, chat):
        owner.add_argument(
            "--watch",
            action="store_true",
            default=argparse.SUPPRESS,
            help="chat UI: start with the corpus watched (f5 toggles it)",
        )

    from askdoc.evaluation.cli import add_eval_parser

    add_eval_parser(sub, common)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    return load_settings(
        config_file=getattr(args, "config", None),
        corpus=getattr(args, "corpus", None),
        index=getattr(args, "index", None),
        store=getattr(args, "store", None),
        mode=getattr(args, "mode", None),
        top_k=getattr(args, "k", None) if args.command == "ask" else None,
        llm_url=getattr(args, "llm_url", None),  # ask and eval
        llm_model=getattr(args, "llm_model", None),
    )


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `askdoc ... | head`: the reader left; stop quietly, like cat does
        _quiet_stdout()
        return 141


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot complain again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _main(argv: Sequence[str] | None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "ask" and (args.question is None) == (args.questions is None):
        parser.error('ask needs a question, "-" for questions on stdin, or --questions FILE')
    if args.command == "index" and args.watch and args.dry_run:
        parser.error("index: --watch and --dry-run do not go together")
    try:
        settings = settings_from(args)
        return run(args, settings)
    except AskdocError as exc:
        print(f"askdoc: {one_line(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("askdoc: interrupted", file=sys.stderr)
        return 130


def command_table() -> dict[str, Handler]:
    """Every command and the function that runs it (imported here, on use: ``askdoc --help``
    loads none of them). ``build_parser`` declares the same commands; a test holds them equal."""
    from askdoc.cli import commands
    from askdoc.evaluation.cli import cmd_eval

    return {
        "index": commands.cmd_index,
        "ask": commands.cmd_ask,
        "status": commands.cmd_status,
        "verify": commands.cmd_verify,
        "chat": commands.cmd_chat,
        "eval": cmd_eval,
    }


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the parsed command (no command: the chat UI)."""
    handler = command_table()[args.command or "chat"]  # argparse accepts no other command
    return int(handler(args, settings))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
