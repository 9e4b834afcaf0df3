"""The source viewer (a whole document, scrolled to the cited passage) and the help screen."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static

from askdoc.tui import texts
from askdoc.types import Document, Source

KEYS: tuple[tuple[str, str, str], ...] = (
    ("Chat", "enter", "ask the question (more questions wait in line)"),
    ("Chat", "up / down", "previous / next question from the history"),
    ("Chat", "ctrl+o", "jump to the citations of the latest answer"),
    ("Chat", "ctrl+r", "build or update the index (answers go on meanwhile)"),
    ("Chat", "f5", "watch the corpus on / off: the index follows its changes"),
    ("Chat", "ctrl+s", "export the transcript to Markdown"),
    ("Chat", "ctrl+l", "clear the chat"),
    ("Chat", "ctrl+t", "show / hide retrieval scores"),
    ("Chat", "ctrl+g", "generated answers on / off (needs the [llm] url setting)"),
    ("Chat", "ctrl+b", "stop the language model writing"),
    ("Chat", "ctrl+p", "command palette (all of the above, by name)"),
    ("Chat", "f1 or ?", "this help (? only away from the question line)"),
    ("Chat", "ctrl+q", "quit"),
    ("Citations", "up / down, k / j", "previous / next citation or source"),
    ("Citations", "enter or click", "open the source viewer on that source"),
    ("Citations", "space", "on a source: the whole passage / back to the sentence"),
    ("Citations", "1 … 9", "open source [n] of that answer"),
    ("Citations", "escape", "back to the question line"),
    ("Source viewer", "up / down, pgup / pgdn", "scroll the document"),
    ("Source viewer", "c", "scroll back to the cited passage"),
    ("Source viewer", "escape or q", "back to the chat"),
)


def keys_table() -> Table:
    table = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    group = ""
    for where, key, what in KEYS:
        table.add_row(Text(where if where != group else ""), Text(key), Text(what))
        group = where
    return table


class HelpScreen(ModalScreen[None]):
    """Every key binding of the app."""

    BINDINGS = [
        Binding("escape,q,f1,question_mark", "app.pop_screen", "Close help"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Static(Content.styled("askdoc · keys", "bold $accent"), id="help-title")
            yield Static(keys_table(), id="help-keys")
            yield Static(
                Content(
                    "Answers are sentences quoted verbatim from your documents; [n] points at "
                    "the source they come from. Nothing leaves this machine."
                ),
                id="help-footer",
            )


class SourceViewer(Screen[None]):
    """A whole document with line numbers, scrolled to the cited passage, the sentence lit."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back to chat"),
        Binding("c", "cited", "Cited passage"),
    ]

    def __init__(self, source: Source, document: Document, corpus: Path) -> None:
        super().__init__()
        self.source = source
        self.document = document
        self.corpus = corpus

    def compose(self) -> ComposeResult:
        before, cited, after, note = texts.document_parts(self.document, self.source)
        yield Static(texts.viewer_title(self.source, self.document, self.corpus), id="viewer-title")
        with VerticalScroll(id="document"):
            if note:
                yield Static(Content.styled(note, "italic $text-muted"), classes="doc-note")
            yield Static(before, classes="doc-part")
            yield Static(cited, id="cited", classes="doc-part")
            yield Static(after, classes="doc-part")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#document").focus()
        self.call_after_refresh(self.action_cited)

    def action_cited(self) -> None:
        document = self.query_one("#document", VerticalScroll)
        cited = self.query_one("#cited")
        document.scroll_to_widget(cited, animate=False, top=True, immediate=True)
        # a few lines of context above the cited sentence
        document.scroll_to(y=max(0, cited.virtual_region.y - 3), animate=False, immediate=True)
