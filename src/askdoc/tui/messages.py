"""Messages between the app's background threads, its widgets and the app itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    import threading

    from askdoc.engine import Status
    from askdoc.errors import AskdocError
    from askdoc.index.writer import BuildReport
    from askdoc.types import Answer, Document, Source


@dataclass
class StatusRead(Message):
    """``engine.status()`` finished (``status`` is None when it failed with ``error``)."""

    status: Status | None
    error: str = ""


@dataclass
class LoadFinished(Message):
    """``engine.load()`` returned (``error`` is None) or raised ``error``."""

    error: AskdocError | None


@dataclass
class Answered(Message):
    """One queued question was answered (or failed with ``error``)."""

    ticket: int
    answer: Answer | None
    error: str = ""
    seconds: float = 0.0
    generating: bool = False
    """The language model is asked next (``tui.generation``): the question is not done yet."""


@dataclass
class BuildProgress(Message):
    """A build reports progress: stage is "read", "model" or "embed"."""

    stage: str
    done: int
    total: int


@dataclass
class BuildFinished(Message):
    """A build ended with a report, or with ``error``."""

    report: BuildReport | None
    error: str = ""


@dataclass
class OpenSource(Message):
    """Show this source in the source viewer."""

    source: Source


@dataclass
class DocumentRead(Message):
    """The document of ``source`` was read for the viewer (``document`` None: not found)."""

    source: Source
    document: Document | None
    error: str = ""


@dataclass
class CorpusChanged(Message):
    """The watcher whose stop event is ``watcher`` saw ``paths`` change (empty: it woke up
    without changes)."""

    paths: frozenset[str]
    watcher: threading.Event


@dataclass
class WatchEnded(Message):
    """The watcher whose stop event is ``watcher`` ended by itself, for ``error``."""

    error: str
    watcher: threading.Event
