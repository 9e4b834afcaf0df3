"""The chat UI. Until the Textual app lands, a line-based chat loop on the same engine."""

from __future__ import annotations

from askdoc.config import Settings


def run_app(settings: Settings) -> int:
    from rich.console import Console

    from askdoc.engine import Engine
    from askdoc.errors import AskdocError
    from askdoc.render import answer_text

    console = Console(highlight=False)
    engine = Engine(settings)
    previous: str | None = None
    console.print("askdoc — ask a question (empty line or Ctrl-D to quit)")
    while True:
        try:
            question = input("? ")
        except EOFError:
            return 0
        if not question.strip():
            return 0
        try:
            answer = engine.ask(question, previous=previous)
        except AskdocError as exc:
            console.print(f"askdoc: {exc}", markup=False)
            continue
        previous = answer.searched
        console.print(answer_text(answer, settings.corpus))
