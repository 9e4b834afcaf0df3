"""Command line: parse, call the library, print. AskdocError becomes one line and exit 1."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from askdoc import __version__
from askdoc.config import MODES, Settings, load_settings
from askdoc.errors import AskdocError

EPILOG = """examples:
  askdoc index                      build or update the index of corpus/
  askdoc ask "Who signed the pact?" answer with cited sources
  askdoc ask "..." --json           the same as a JSON object
  askdoc ask "..." --generate       also a language model's answer, each sentence checked
  askdoc status                     index facts and files changed since the last build
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

    ask = sub.add_parser("ask", parents=[common], help="answer a question from the index")
    ask.add_argument("question", help="the question, in quotes")
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
    sub.add_parser("verify", parents=[common], help="check every file of the index")
    sub.add_parser("chat", parents=[common], help="open the chat UI (same as bare askdoc)")

    from askdoc.eval_cli import add_eval_parser

    add_eval_parser(sub, common)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    return load_settings(
        config_file=getattr(args, "config", None),
        corpus=getattr(args, "corpus", None),
        index=getattr(args, "index", None),
        mode=getattr(args, "mode", None),
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
    try:
        settings = settings_from(args)
        return run(args, settings)
    except AskdocError as exc:
        print(f"askdoc: {one_line(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("askdoc: interrupted", file=sys.stderr)
        return 130


def one_line(text: str) -> str:
    return " ".join(text.split())


def run(args: argparse.Namespace, settings: Settings) -> int:
    from askdoc import cli_commands as commands

    command = args.command or "chat"
    handler: Any = {
        "index": commands.cmd_index,
        "ask": commands.cmd_ask,
        "status": commands.cmd_status,
        "verify": commands.cmd_verify,
        "chat": commands.cmd_chat,
    }.get(command)
    if handler is None:
        from askdoc.eval_cli import cmd_eval

        handler = cmd_eval
    return int(handler(args, settings))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
