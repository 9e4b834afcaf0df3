"""The chat's generated answers: the model's words as they stream in, then each sentence shown
supported (with its quote) or unsupported (in the error colour, with what is wrong)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Static

from askdoc.render_generated import SUPPORTED, UNSUPPORTED, quote_location, speed, summary
from askdoc.tui import texts

if TYPE_CHECKING:
    from askdoc.generate import GeneratedAnswer
    from askdoc.grounding import SentenceCheck
    from askdoc.types import Source

STOP_KEY = "ctrl+b"


@dataclass
class TextStreamed(Message):
    """A piece of the model's answer to question ``ticket`` arrived."""

    ticket: int
    piece: str


@dataclass
class GenerationFinished(Message):
    """The model's answer to ``ticket`` is complete and checked (or failed: ``error``)."""

    ticket: int
    generated: GeneratedAnswer


def check_content(check: SentenceCheck, sources: dict[int, Source], corpus: Path) -> Content:
    """One sentence with its verdict: ✓ and the supporting quote, or ✗ and the problems."""
    sentence = texts.one_line(check.text)
    if not check.claim:
        return Content.styled(sentence, "$text-muted")
    parts: list[tuple[str, str] | str] = []
    if check.ok:
        parts += [(f"{SUPPORTED} ", "bold $text-success"), sentence]
    else:
        parts += [
            (f"{UNSUPPORTED} ", "bold $text-error"),
            (sentence, "$text-error strike" if not check.supported else "$text-error"),
            (f"\n   {check.verdict}: {'; '.join(check.problems())}", "italic $text-error"),
        ]
    support = check.support
    if support is not None and check.supported:
        parts += [
            ("\n   ↳ ", "$text-muted"),
            (f"[{support.source}] ", texts.MARK),
            (quote_location(support, sources, corpus), "$text-success"),
            (f" “{texts.one_line(support.text)}”", "italic $text-muted"),
        ]
    return Content.assemble(*parts)


class GeneratedView(Vertical):
    """The model's answer inside an exchange: streamed text, then the checked sentences."""

    def __init__(self, model_hint: str = "") -> None:
        super().__init__(classes="generated")
        self.text = ""
        self.model_hint = model_hint
        self.generated: GeneratedAnswer | None = None

    def compose(self) -> ComposeResult:
        yield Static(self._header(f"writing… ({STOP_KEY} stops)"), classes="generated-header")
        yield Static(Content(""), classes="generated-body")

    def _header(self, state: str) -> Content:
        return Content.assemble(("Generated answer", "bold $accent"), (f"  {state}", "$text-muted"))

    def add_text(self, piece: str) -> None:
        self.text += piece
        body = self.query(".generated-body").results(Static)
        for static in body:
            static.update(Content(texts.safe(self.text)))

    def show(self, generated: GeneratedAnswer, corpus: Path) -> None:
        """Replace the streamed text by the checked sentences."""
        self.generated = generated
        self.query(".generated-body").remove()
        header = self.query_one(".generated-header", Static)
        if generated.error:
            header.update(self._header("not available"))
            self.mount(
                Static(
                    Content.styled(
                        f"✗ {texts.one_line(generated.error)}; answered from the documents",
                        "$text-warning",
                    ),
                    classes="generated-note",
                )
            )
            self.add_class("failed")
            return
        model = texts.one_line(generated.model)
        header.update(self._header(f"{model} · {summary(generated)}"))
        sources = {s.number: s for s in generated.answer.sources}
        widgets: list[Static] = []
        if not generated.checks and generated.text:
            widgets.append(Static(Content(texts.one_line(generated.text))))
        for check in generated.checks:
            verdict = "supported" if check.ok else "unsupported"
            widgets.append(
                Static(check_content(check, sources, corpus), classes=f"checked {verdict}")
            )
        for note in generated.notes():
            widgets.append(Static(Content.styled(f"note: {note}", "$text-warning")))
        if generated.tokens:
            widgets.append(Static(Content.styled(speed(generated), "$text-muted")))
        self.mount_all(widgets)
