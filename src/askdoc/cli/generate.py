"""``askdoc ask --generate``: ask the configured language model, print its checked answer
(streamed with ``--stream``) above the quoted one; a failing model is one line on stderr."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.text import Text

from askdoc.config import Settings
from askdoc.engine import Engine
from askdoc.generate import GeneratedAnswer, generate_with
from askdoc.render import answer_json, answer_text, safe
from askdoc.render_generated import TITLE, generated_json, generated_text
from askdoc.types import Answer


def ask_generated(
    engine: Engine, answer: Answer, args: argparse.Namespace, settings: Settings
) -> int:
    out = Console(highlight=False, soft_wrap=True)
    streaming = bool(getattr(args, "stream", False)) and not args.json
    on_text = None
    if streaming:
        out.print(Text(f"{TITLE} (streaming)", style="bold"))
        sys.stdout.write("  ")

        def on_text(piece: str) -> None:
            sys.stdout.write(safe(piece).replace("\n", "\n  "))
            sys.stdout.flush()

    generated = generate_with(engine, answer, on_text)
    if streaming:
        sys.stdout.write("\n\n")
        sys.stdout.flush()
    report_failure(generated)
    if args.json:
        data = answer_json(answer, settings.corpus)
        data["generated"] = generated_json(generated, settings.corpus)
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    if not generated.error:
        out.print(generated_text(generated, settings.corpus), end="")
        out.print()
    passages = bool(getattr(args, "passages", False))
    out.print(answer_text(answer, settings.corpus, passages=passages), end="")
    return 0


def report_failure(generated: GeneratedAnswer) -> None:
    """One line on stderr when the model could not answer (the quoted answer follows)."""
    if generated.error:
        print(
            f"askdoc: {' '.join(generated.error.split())}; answered from the documents",
            file=sys.stderr,
        )
