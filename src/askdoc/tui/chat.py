"""The chat's core: one queue of questions answered strictly in order, off the UI thread."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import App
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Input
from textual.worker import Worker, WorkerState

from askdoc.config import Settings
from askdoc.errors import AskdocError
from askdoc.followup import next_context
from askdoc.tui import texts
from askdoc.tui.generation import (
    STOP_KEY,
    GeneratedView,
    GenerationFinished,
    TextStreamed,
)
from askdoc.tui.messages import Answered, DocumentRead, OpenSource, StatusRead
from askdoc.tui.screens import SourceViewer
from askdoc.tui.transcript import Entry, Exchange, History
from askdoc.tui.widgets import AnswerView, Note, StatusBar

if TYPE_CHECKING:
    from askdoc.engine import Engine
    from askdoc.llm_client import Cancel
    from askdoc.types import Answer

PHASES = {
    "loading": ("◌ loading model…", "busy"),
    "ready": ("● ready", "ok"),
    "no-index": ("✗ no index", "error"),
    "mismatch": ("✗ index needs a rebuild", "error"),
    "model-error": ("✗ model failed to load", "error"),
    "error": ("✗ index unusable", "error"),
}
WAITING = {
    "loading": "waiting for the model to load…",
    "no-index": "waiting for the index: build it with ctrl+r",
    "mismatch": "waiting for the index to be rebuilt (ctrl+r)",
    "error": "waiting for a usable index (ctrl+r rebuilds it)",
}


@dataclass
class Pending:
    """A question waiting for (or being given) an answer."""

    ticket: int
    view: AnswerView
    exchange: Exchange


class ChatBase(App[int]):
    """Questions, answers and sources. ``phase`` says whether the engine can answer yet."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        show_timings: bool = True,
        export_path: Path | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.engine = engine
        self.show_timings = show_timings
        """Show how long each answer took (off in snapshot tests)."""
        self.export_path = export_path
        """Where "export transcript" writes (a file, or a folder); None: the current folder."""
        self.history = History()
        self.entries: list[Entry] = []
        self.phase = "loading"
        self.building = False
        self.model_loaded = False
        """The embedding model is in memory (the index may still be missing)."""
        self.scores = True
        self.watching = False
        """The corpus is watched: its changes are built into the index (f5)."""
        self._queue: deque[Pending] = deque()
        self._current: Pending | None = None
        self._previous: str | None = None
        self._ticket = 0
        self._model_lock = threading.Lock()
        self._followed_y: float | None = None
        self.generate = False
        """Ask the language model too (ctrl+g; needs the [llm] url setting)."""
        self._cancel: Cancel | None = None
        self._writing = False
        """The current question's answer is being written by the language model."""

    @property
    def transcript(self) -> VerticalScroll:
        return self.query_one("#transcript", VerticalScroll)

    @property
    def busy(self) -> bool:
        """A question is being answered or waits in the queue."""
        return self._current is not None or bool(self._queue)

    def show_state(self) -> None:
        text, variant = PHASES.get(self.phase, (self.phase, ""))
        if self.building:
            text, variant = "⟳ building index…", "busy"
        elif self.phase == "ready" and self._current is not None and self._writing:
            text, variant = f"● generating… {STOP_KEY} stops", "busy"
        elif self.phase == "ready" and self._current is not None:
            text, variant = "● answering…", "busy"
        if self._queue:
            text += f" · {len(self._queue)} waiting"
        if self.watching:
            text += " · watching"
        if self.generate:
            text = f"✎ generate · {text}"
        self.query_one(StatusBar).show_state(text, variant)

    def add_note(self, text: str, variant: str) -> None:
        self.add_entry(Note(texts.one_line(text), variant))

    def add_entry(self, widget: Widget) -> None:
        """Add to the transcript; follow it unless the person scrolled up."""
        following = self.at_bottom()
        self.transcript.mount(widget)
        if following:
            self.follow(widget)

    def at_bottom(self) -> bool:
        """At the end of the transcript, or where we last scrolled it: not scrolled away."""
        transcript = self.transcript
        return transcript.scroll_y >= transcript.max_scroll_y - 1 or (
            self._followed_y is not None and abs(transcript.scroll_y - self._followed_y) < 1
        )

    def follow(self, widget: Widget, tries: int = 5) -> None:
        """Once laid out: show ``widget`` from its top if it is taller than the view, else the
        end of the transcript."""

        def scroll() -> None:
            transcript = self.transcript
            if not widget.is_attached:
                return
            if widget.outer_size.height == 0 and tries > 0:
                self.follow(widget, tries - 1)
            elif widget.outer_size.height > transcript.scrollable_content_region.height:
                transcript.scroll_to_widget(widget, animate=False, top=True, immediate=True)
                self._followed_y = transcript.scroll_target_y
            else:
                transcript.scroll_end(animate=False, immediate=True)
                self._followed_y = None

        self.call_after_refresh(scroll)

    # -- index status ------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="status", exit_on_error=False)
    def action_refresh_status(self) -> None:
        try:
            self.post_message(StatusRead(self.engine.status()))
        except AskdocError as exc:
            self.post_message(StatusRead(None, str(exc)))

    # -- questions ---------------------------------------------------------------------------

    @on(Input.Submitted, "#question")
    def ask_question(self, event: Input.Submitted) -> None:
        question = event.value.strip()
        if not question:
            return
        event.input.value = ""
        self.history.add(question)
        self._ticket += 1
        view = AnswerView(question, self._ticket)
        exchange = Exchange(question)
        self.entries.append(exchange)
        self._queue.append(Pending(self._ticket, view, exchange))
        self.transcript.mount(view)
        self.follow(view)
        self.pump()

    def pump(self) -> None:
        """Start the next queued question when the engine is free; say why the others wait."""
        if self.phase == "model-error":
            while self._queue:
                pending = self._queue.popleft()
                pending.exchange.error = "the embedding model could not be loaded"
                pending.view.show_error(f"Not answered: {pending.exchange.error}.")
        if self._current is None and self._queue and self.phase == "ready":
            self._current = self._queue.popleft()
            self._current.view.set_waiting("searching…")
            self._ask(
                self._current.ticket, self._current.exchange.question, self._previous, self.generate
            )
        reason = WAITING.get(self.phase)
        for place, pending in enumerate(self._queue, 1):
            pending.view.set_waiting(reason or f"queued: {place} ahead of it…")
        self.show_state()

    @work(thread=True, group="ask", exit_on_error=False)
    def _ask(
        self, ticket: int, question: str, previous: str | None, generate: bool = False
    ) -> None:
        started = time.perf_counter()
        try:
            answer = self.engine.ask(question, previous=previous)
        except AskdocError as exc:
            self.post_message(Answered(ticket, None, str(exc)))
            return
        seconds = time.perf_counter() - started
        self.post_message(Answered(ticket, answer, seconds=seconds, generating=generate))
        if generate:
            self._generate(ticket, answer)

    def _generate(self, ticket: int, answer: Answer) -> None:
        """Ask the language model (in the ask worker's thread), streaming its words."""
        from askdoc.generate import generate_with
        from askdoc.llm_client import Cancel

        def stream(piece: str) -> None:
            self.post_message(TextStreamed(ticket, piece))

        self._cancel = Cancel()
        try:
            generated = generate_with(self.engine, answer, stream, self._cancel)
        finally:
            self._cancel = None
        self.post_message(GenerationFinished(ticket, generated))

    def action_stop_generating(self) -> None:
        cancel = self._cancel
        if cancel is None:
            self.notify("The model is not writing anything.")
            return
        cancel.set()

    def on_text_streamed(self, message: TextStreamed) -> None:
        pending = self._current
        if pending is not None and pending.ticket == message.ticket:
            for view in pending.view.query(GeneratedView):
                view.add_text(message.piece)

    def on_generation_finished(self, message: GenerationFinished) -> None:
        pending = self._current
        if pending is None or pending.ticket != message.ticket:
            return
        self._current = None
        self._writing = False
        following = self.at_bottom()
        for view in pending.view.query(GeneratedView):
            view.show(message.generated, self.settings.corpus)
        if following and pending.view.is_attached:
            self.follow(pending.view)
        self.pump()

    async def on_answered(self, message: Answered) -> None:
        pending = self._current
        if pending is None or pending.ticket != message.ticket:
            return
        generating = message.generating and message.answer is not None
        self._writing = generating
        if not generating:
            self._current = None  # else the question is done when the model is
        following = self.at_bottom()
        if message.answer is None:
            pending.exchange.error = message.error
            pending.view.show_error(message.error)
        else:
            answer = message.answer
            pending.exchange.answer = answer
            self._previous = next_context(answer, self._previous)
            seconds = message.seconds if self.show_timings else None
            await pending.view.show_answer(answer, self.settings.corpus, self.scores, seconds)
            if generating:
                await pending.view.mount(GeneratedView(), after=pending.view.query_one(".question"))
        if following and pending.view.is_attached:
            self.follow(pending.view)
        self.pump()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A bug in a worker is shown in the app (the chat goes on) instead of killing it."""
        if event.state != WorkerState.ERROR:
            return
        error = f"unexpected error: {event.worker.error!r}"
        if event.worker.group == "ask" and self._current is not None:
            self.post_message(Answered(self._current.ticket, None, error))
        else:
            self.notify(error, severity="error", markup=False)

    def waiting(self) -> list[Pending]:
        """The questions not answered yet, in order (kept when the chat is cleared)."""
        current = [self._current] if self._current is not None else []
        return current + list(self._queue)

    # -- sources -----------------------------------------------------------------------------

    def on_open_source(self, message: OpenSource) -> None:
        self._read_document(message)

    @work(thread=True, group="document", exit_on_error=False)
    def _read_document(self, message: OpenSource) -> None:
        try:
            document = self.engine.document(message.source.path)
        except AskdocError as exc:
            self.post_message(DocumentRead(message.source, None, str(exc)))
            return
        self.post_message(DocumentRead(message.source, document))

    def on_document_read(self, message: DocumentRead) -> None:
        source, document = message.source, message.document
        if isinstance(self.screen, SourceViewer):
            return  # a second click while the first one was opening
        if document is None:
            why = message.error or "it is no longer in the index"
            self.notify(f"cannot open {source.path}: {why}", severity="error", markup=False)
            return
        if document.text[source.start : source.end] != source.text:
            self.notify(
                "the document changed since this answer: the highlight may be off",
                severity="warning",
            )
        self.push_screen(SourceViewer(source, document, self.settings.corpus))
