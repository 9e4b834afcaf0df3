"""The chat's widgets. Anything showing document text, paths or questions gets ``Content``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Button, Input, Static

from askdoc.render import CLOSEST_TITLE, NOT_FOUND, READ_AS, SOURCES_TITLE, source_location
from askdoc.tui import texts
from askdoc.tui.messages import OpenSource
from askdoc.tui.transcript import History

if TYPE_CHECKING:
    from textual.widget import AwaitMount

    from askdoc.engine import Status
    from askdoc.types import Answer, AnswerSentence, Source


class StatusBar(Horizontal):
    """Index facts on the left (documents, passages, model, drift), app state on the right."""

    def compose(self) -> ComposeResult:
        yield Static(Content("reading index…"), id="index-info")
        yield Static(Content(""), id="state")

    def show_status(self, status: Status) -> None:
        info = self.query_one("#index-info", Static)
        corpus = texts.one_line(str(status.corpus))
        parts: list[tuple[str, str] | str] = [("askdoc", "bold $accent"), f"  {corpus}"]
        manifest = status.manifest
        if manifest is not None:
            model = texts.one_line(str(manifest.model.get("name", "?"))).split("/")[-1]
            store = " · Milvus" if manifest.faiss_kind == "milvus" else ""
            parts.append(
                f"{store} · {manifest.documents} documents · {manifest.chunks} passages · {model}"
            )
        elif status.problem:
            parts.append((f" · {texts.one_line(status.problem)}", "$text-error"))
        if status.skipped:
            parts.append(f" · {len(status.skipped)} skipped")
        drift = status.drift
        if drift.any:
            counts = ", ".join(
                f"{len(paths)} {label}"
                for label, paths in (
                    ("added", drift.added),
                    ("changed", drift.changed),
                    ("removed", drift.removed),
                )
                if paths
            )
            parts.append(
                (f"  ⚠ corpus changed since the build ({counts}): ctrl+r", "$text-warning")
            )
        info.update(Content.assemble(*parts))
        info.set_class(drift.any, "drift")

    def show_state(self, text: str, variant: str = "") -> None:
        state = self.query_one("#state", Static)
        state.update(Content(text))
        for name in ("busy", "ok", "error"):
            state.set_class(name == variant, name)


class QuestionInput(Input):
    """The question line; up/down walk the questions already asked."""

    BINDINGS = [
        Binding("up", "history(-1)", "Previous question", show=False),
        Binding("down", "history(1)", "Next question", show=False),
    ]

    def __init__(self, history: History, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.history = history

    def action_history(self, step: int) -> None:
        value = self.history.up(self.value) if step < 0 else self.history.down()
        if value is not None:
            self.value = value
            self.cursor_position = len(value)


class Selectable(Vertical, can_focus=True):
    """A citation or a source: Enter or a click opens the source viewer."""

    BINDINGS = [
        Binding("enter", "open", "Open source"),
        Binding("up,k", "step(-1)", "Previous", show=False),
        Binding("down,j", "step(1)", "Next", show=False),
    ]

    def __init__(self, source: Source, classes: str) -> None:
        super().__init__(classes=classes)
        self.source = source

    def action_open(self) -> None:
        self.post_message(OpenSource(self.source))

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.focus()
        self.post_message(OpenSource(self.source))

    def action_step(self, step: int) -> None:
        items = list(self.screen.query(Selectable))
        index = items.index(self) + step
        if 0 <= index < len(items):
            items[index].focus()
            items[index].scroll_visible(animate=False)

    def on_key(self, event: events.Key) -> None:
        """1…9 open source [n] of the same answer; other printable keys go to the question."""
        char = event.character
        if not event.is_printable or char is None or char in "jk? ":
            return
        event.stop()
        if not char.isdigit():
            question = self.screen.query_one(QuestionInput)
            question.focus()
            question.insert_text_at_cursor(char)
            return
        view = next((a for a in self.ancestors if isinstance(a, AnswerView)), None)
        for source in view.answer.sources if view is not None and view.answer else ():
            if source.number == int(char):
                self.post_message(OpenSource(source))


class CitedSentence(Selectable):
    """An answer sentence with its ``[n]`` marker and the file and line it comes from."""

    def __init__(self, sentence: AnswerSentence, source: Source, corpus: Path) -> None:
        super().__init__(source, classes="sentence")
        self.sentence = sentence
        self.corpus = corpus

    def compose(self) -> ComposeResult:
        where = source_location(self.corpus, self.source, cited=True)
        if self.source.page is None:
            first, last = self.sentence.lines
            where = where.rpartition(":")[0] + f":L{first}" + (f"-{last}" if last != first else "")
        yield Static(texts.sentence_content(self.sentence, where))


class SourceCard(Selectable):
    """``[n] path:L8  score``, then the supporting sentence in a little context; space shows
    the whole passage (and hides it again), enter opens the document. After a refusal
    (``closest``) a card is one line: where, and the start of its best sentence."""

    BINDINGS = [Binding("space", "toggle_passage", "Whole passage")]

    show_scores: reactive[bool] = reactive(True)
    expanded: reactive[bool] = reactive(False)

    def __init__(
        self, source: Source, corpus: Path, show_scores: bool, closest: bool = False
    ) -> None:
        super().__init__(source, classes="source closest" if closest else "source")
        self.corpus = corpus
        self.closest = closest
        self.set_reactive(SourceCard.show_scores, show_scores)

    def compose(self) -> ComposeResult:
        yield Static(self._title(), classes="source-title")
        if not self.closest:
            yield Static(texts.excerpt_content(self.source), classes="passage")

    def _title(self) -> Content:
        if self.closest:
            return texts.closest_content(self.source, self.corpus)
        return texts.source_title(self.source, self.corpus, self.show_scores, self.expanded)

    def action_toggle_passage(self) -> None:
        self.expanded = not self.expanded

    def watch_expanded(self, expanded: bool) -> None:
        if not self.is_mounted:
            return
        if self.closest:
            self.closest = False
            self.remove_class("closest")
            self.mount(Static(classes="passage"))
        self.query_one(".source-title", Static).update(self._title())
        passage = self.query_one(".passage", Static)
        if expanded:
            passage.update(texts.passage_content(self.source))
        else:
            passage.update(texts.excerpt_content(self.source))

    def watch_show_scores(self, show: bool) -> None:
        if self.is_mounted:
            self.query_one(".source-title", Static).update(self._title())


class Note(Static):
    """A line from askdoc itself: errors, hints, progress of the queue."""

    def __init__(self, content: Content | str, variant: str = "info") -> None:
        super().__init__(Content(content) if isinstance(content, str) else content)
        self.add_class(variant)


class AnswerView(Vertical):
    """One exchange: the question, then a waiting line, then the answer and its sources."""

    def __init__(self, question: str, ticket: int) -> None:
        super().__init__(classes="exchange")
        self.question = question
        self.ticket = ticket
        self.answer: Answer | None = None
        self.waiting = "waiting…"

    def compose(self) -> ComposeResult:
        yield Static(texts.question_content(self.question), classes="question")
        yield Note(self.waiting, "pending")

    def set_waiting(self, text: str) -> None:
        self.waiting = text
        for note in self.query(".pending").results(Note):
            note.update(Content(text))

    def show_error(self, message: str) -> None:
        self.query(".pending").remove()
        self.mount(Note(Content.assemble(("✗ ", "bold"), texts.one_line(message)), "error"))
        self.add_class("failed")

    def show_answer(
        self, answer: Answer, corpus: Path, show_scores: bool, seconds: float | None
    ) -> AwaitMount:
        self.answer = answer
        self.query(".pending").remove()
        self.set_class(not answer.found, "not-found")
        widgets: list[Widget] = [Static(self._header(answer, seconds), classes="answer-header")]
        by_number = {s.number: s for s in answer.sources}
        if answer.searched != answer.question:
            searched = f"{READ_AS}{texts.one_line(answer.searched)}"
            widgets.append(
                Static(Content.styled(searched, "italic $text-muted"), classes="searched")
            )
        if answer.found:
            for sentence in answer.sentences:
                source = by_number.get(sentence.source)
                if source is not None:
                    widgets.append(CitedSentence(sentence, source, corpus))
        if answer.message and answer.found:
            widgets.append(Note(f"note: {texts.one_line(answer.message)}", "muted"))
        if answer.sources:
            title = SOURCES_TITLE if answer.found else CLOSEST_TITLE
            widgets.append(Static(Content.styled(title, "bold"), classes="sources-title"))
        closest = not answer.found
        widgets += [SourceCard(s, corpus, show_scores, closest) for s in answer.sources]
        return self.mount_all(widgets)

    @staticmethod
    def _header(answer: Answer, seconds: float | None) -> Content:
        if answer.found:
            parts: list[tuple[str, str] | str] = [("Answer", "bold $text-success")]
        else:
            message = texts.one_line(answer.message or NOT_FOUND)
            parts = [("⚠ " + NOT_FOUND.rstrip("."), "bold $text-warning")]
            if message.rstrip(".") != NOT_FOUND.rstrip("."):
                parts.append(f": {message}")
        if seconds is not None:
            parts.append((f"  {seconds:.2f} s", "$text-muted"))
        return Content.assemble(*parts)


class IndexPanel(Vertical):
    """Shown when there is no usable index: what is wrong, and a button to build it."""

    def __init__(self, message: str, button: str) -> None:
        super().__init__(id="index-panel")
        self.message = message
        self.button_label = button

    def compose(self) -> ComposeResult:
        yield Static(Content(texts.one_line(self.message)), id="index-message")
        yield Button(Content(self.button_label), id="build-index", variant="primary")

    def set_message(self, message: str) -> None:
        self.query_one("#index-message", Static).update(Content(texts.one_line(message)))
