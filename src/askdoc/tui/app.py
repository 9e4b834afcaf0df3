"""The askdoc chat app: status bar, transcript, question line, footer; long jobs off-thread."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.widgets import Button, Footer, ProgressBar, Static
from textual.worker import get_current_worker

from askdoc.config import Settings
from askdoc.errors import AskdocError, IndexMismatchError, ModelError, NoIndexError
from askdoc.render import BUILD_STAGES, report_text
from askdoc.tui import texts
from askdoc.tui.commands import AskdocCommands
from askdoc.tui.messages import BuildFinished, BuildProgress, LoadFinished, StatusRead
from askdoc.tui.screens import HelpScreen, SourceViewer
from askdoc.tui.transcript import BuildEntry, export_name, to_markdown
from askdoc.tui.watching import WatchingChat
from askdoc.tui.widgets import (
    AnswerView,
    IndexPanel,
    Note,
    QuestionInput,
    Selectable,
    SourceCard,
    StatusBar,
)
from askdoc.watch import stoppable

if TYPE_CHECKING:
    from askdoc.engine import Engine


CHAT_ONLY = {"focus_citations", "rebuild", "export", "clear", "toggle_scores", "focus_input"}
"""Actions hidden (and off) while the source viewer is open."""


class AskdocApp(WatchingChat):
    """Chat with your documents: every answer cites its sources, which open in a viewer."""

    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "askdoc"
    COMMANDS = App.COMMANDS | {AskdocCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("f1", "help", "Help"),
        Binding("question_mark", "help", "Help", show=False),
        Binding("ctrl+o", "focus_citations", "Citations"),
        Binding("ctrl+r", "rebuild", "Rebuild"),
        Binding("f5", "toggle_watch", "Watch corpus", show=False),
        Binding("ctrl+s", "export", "Export"),
        Binding("ctrl+l", "clear", "Clear"),
        Binding("ctrl+t", "toggle_scores", "Scores", show=False),  # footer fits 80 columns
        Binding("escape", "focus_input", "Question", show=False),
    ]

    def compose(self) -> ComposeResult:
        corpus = texts.one_line(str(self.settings.corpus))
        yield StatusBar(id="status-bar")
        with VerticalScroll(id="transcript"):
            yield Note(
                Content.assemble(
                    "Ask a question about the documents in ",
                    (corpus, "bold"),
                    " and press enter. Answers quote the documents verbatim; each sentence "
                    "carries a ",
                    ("[n]", texts.MARK),
                    " citation that opens its source (click it, or ctrl+o then enter). "
                    "f1 help · ctrl+p commands",
                ),
                "welcome",
            )
        with Horizontal(id="build-row"):
            yield Static(Content("building index…"), id="build-label")
            yield ProgressBar(id="build-progress", show_eta=False)
        yield QuestionInput(
            self.history, placeholder="Ask your documents a question…", id="question"
        )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(QuestionInput).focus()
        self.show_state()
        self.action_refresh_status()
        # The index opens after the first frame (faiss's import holds the GIL); the model's
        # ONNX export is read meanwhile (onnxruntime releases it), if there is one.
        self.engine.preload()
        self.call_after_refresh(self.start_load)
        self.set_interval(60, self.action_refresh_status)
        if self.watch_at_start:
            self.call_after_refresh(self.action_toggle_watch)

    # -- long jobs in thread workers; each ends with a message. Quitting cancels them: a build
    # -- stops at its next safe point (between commits), leaving the last committed index.

    def start_load(self) -> None:
        self.show_state()
        self._load()

    @work(thread=True, group="load", exit_on_error=False)
    def _load(self) -> None:
        error: AskdocError | None = None
        try:
            with self._model_lock:
                self.engine.load()
        except AskdocError as exc:
            error = exc
        except Exception as exc:  # shown in the app rather than lost with the worker
            error = AskdocError(f"unexpected error while loading: {type(exc).__name__}: {exc}")
        self.post_message(LoadFinished(error))

    def on_status_read(self, message: StatusRead) -> None:
        if message.status is None:
            self.notify(message.error, title="index status", severity="warning", markup=False)
            return
        self.query_one(StatusBar).show_status(message.status)
        if message.status.manifest is None and self.phase == "loading" and not self.building:
            self._no_index()  # say so now, not once the model has loaded

    def _no_index(self) -> None:
        self.phase = "no-index"
        corpus = texts.one_line(str(self.settings.corpus))
        self._offer_build(
            f"There is no index yet for {corpus}. Build it to start asking questions: "
            "askdoc reads every document and embeds its passages.",
            "Build the index (ctrl+r)",
        )
        self.pump()

    def on_load_finished(self, message: LoadFinished) -> None:
        error = message.error
        self.model_loaded = not isinstance(error, ModelError)
        if self.engine.notice:
            self.add_note(self.engine.notice, "warning")
        if error is None:
            self.phase = "ready"
            self.query(IndexPanel).remove()
        elif isinstance(error, NoIndexError):
            if self.building:
                self.phase = "no-index"  # the build under way makes it, then loads it
            else:
                self._no_index()
        elif isinstance(error, ModelError):
            self.phase = "model-error"
            self.add_note(f"The embedding model could not be loaded: {error}", "error")
        else:
            self.phase = "mismatch" if isinstance(error, IndexMismatchError) else "error"
            self._offer_build(str(error), "Rebuild the index (ctrl+r)")
        self.pump()

    def _offer_build(self, message: str, button: str) -> None:
        panels = self.query(IndexPanel)
        if panels:
            panels.first().set_message(message)
        else:
            self.transcript.mount(IndexPanel(message, button), after=0)

    @on(Button.Pressed, "#build-index")
    def build_pressed(self) -> None:
        self.action_rebuild()

    def action_rebuild(self, full: bool = False) -> None:
        if self.building:
            self.notify("The index is already being built.", severity="warning")
            return
        self.building = True
        self.query_one("#build-row").display = True
        waiting = "waiting for the model to load…" if not self.model_loaded else "starting build…"
        self.query_one("#build-label", Static).update(Content(waiting))
        self.query_one(ProgressBar).update(total=None, progress=0)
        self.show_state()
        self._build(full)

    @work(thread=True, group="build", exit_on_error=False)
    def _build(self, full: bool) -> None:
        def post(stage: str, done: int, total: int) -> None:
            self.post_message(BuildProgress(stage, done, total))

        progress = stoppable(get_current_worker().cancelled_event, post)
        try:
            embedder = self.engine.embedder
            if not embedder.loaded:  # ~10 s the first time: say so rather than "starting build…"
                progress("model", 0, 1)
            with self._model_lock:
                embedder.load()
            progress("model", 1, 1)
            report = self.engine.build(full=full, progress=progress)
        except AskdocError as exc:
            self.post_message(BuildFinished(None, str(exc)))
        except Exception as exc:  # shown in the app rather than lost with the worker
            self.post_message(BuildFinished(None, f"unexpected error: {type(exc).__name__}: {exc}"))
        else:
            self.post_message(BuildFinished(report))

    def on_build_progress(self, message: BuildProgress) -> None:
        label = BUILD_STAGES.get(message.stage, message.stage)
        self.query_one("#build-label", Static).update(
            Content(f"{label} {message.done}/{message.total}")
        )
        self.query_one(ProgressBar).update(total=max(1, message.total), progress=message.done)

    def on_build_finished(self, message: BuildFinished) -> None:
        self.building = False
        self.query_one("#build-row").display = False
        if self.watched_build_finished(message.report, message.error):
            pass  # a short note at most: the watcher builds often
        elif message.report is None:
            self.add_note(f"The index was not built: {message.error}", "error")
            self.notify(message.error, title="build failed", severity="error", markup=False)
        else:
            self.entries.append(BuildEntry(message.report))
            text = report_text(message.report, self.settings)
            text.rstrip()
            self.add_entry(Static(text, classes="report"))
            self.notify("The index is up to date.")
        if message.report is None:
            self.show_state()
            return
        self.action_refresh_status()
        if self.phase in ("ready", "loading"):
            self.show_state()  # a loaded reader switches to the new generation by itself
        else:
            self.phase = "loading"
            self.pump()
            self.start_load()

    # -- actions -----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in CHAT_ONLY and isinstance(self.screen, SourceViewer):
            return False
        return True

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_focus_input(self) -> None:
        self.query_one(QuestionInput).focus()

    def action_focus_citations(self) -> None:
        for view in reversed(list(self.query(AnswerView))):
            items = list(view.query(Selectable))
            if items:
                items[0].focus()
                items[0].scroll_visible(animate=False)
                return
        self.notify("No citations yet: ask a question first.")

    def action_toggle_scores(self) -> None:
        self.scores = not self.scores
        for card in self.query(SourceCard):
            card.show_scores = self.scores
        self.notify("Retrieval scores shown." if self.scores else "Retrieval scores hidden.")

    def action_clear(self) -> None:
        waiting = self.waiting()
        tickets = {p.ticket for p in waiting}
        for child in list(self.transcript.children):
            if isinstance(child, AnswerView) and child.ticket in tickets:
                continue
            if isinstance(child, IndexPanel) or child.has_class("welcome"):
                continue
            child.remove()
        self.entries = [p.exchange for p in waiting]
        self._previous = None  # a cleared chat has nothing for a follow-up to lean on
        self.query_one(QuestionInput).focus()  # the focused citation may be gone: keep typing
        self.notify("Chat cleared.")

    def action_export(self) -> None:
        path = self.export_path or transcripts_dir()
        try:
            if self.export_path is None:
                path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.notify(f"cannot create {path}: {exc.strerror}", severity="error", markup=False)
            return
        if path.is_dir():
            path = path / export_name()
        markdown = to_markdown(self.entries, self.settings.corpus, show_scores=self.scores)
        try:
            path.write_text(markdown, encoding="utf-8")
        except OSError as exc:
            self.notify(f"cannot write {path}: {exc.strerror}", severity="error", markup=False)
            return
        self.notify(f"Transcript saved to {path}", title="export", markup=False)


def transcripts_dir() -> Path:
    """Where exported transcripts go by default: the user's data folder
    (``~/.local/share/askdoc/transcripts`` on Linux), not wherever askdoc was started."""
    import platformdirs

    return platformdirs.user_data_path("askdoc") / "transcripts"


def create_app(
    settings: Settings,
    engine: Engine | None = None,
    *,
    show_timings: bool = True,
    export_path: Path | None = None,
    watch: bool = False,
) -> AskdocApp:
    """The chat app over ``engine`` (default: a new Engine on ``settings``; nothing loads yet);
    ``watch``: follow the corpus from the start (f5 toggles it)."""
    if engine is None:
        from askdoc.engine import Engine

        engine = Engine(settings)
    app = AskdocApp(settings, engine, show_timings=show_timings, export_path=export_path)
    app.watch_at_start = watch
    return app
