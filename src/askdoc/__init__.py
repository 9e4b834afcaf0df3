"""askdoc: ask questions of your own documents, with exact citations.

The library API (docs/api.md) lives in ``askdoc.api``; its names are importable from ``askdoc``
and load on first use, so ``import askdoc`` imports nothing heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from askdoc.api import (
        Answer,
        AnswerSentence,
        AskdocError,
        BuildReport,
        ConfigError,
        CorpusError,
        Document,
        Drift,
        Engine,
        IndexBusyError,
        IndexCorruptError,
        IndexMismatchError,
        Manifest,
        ModelError,
        NoIndexError,
        QuestionError,
        Settings,
        Skipped,
        Source,
        Status,
        WatchedBuild,
        answer_json,
        keep_current,
        open,
        source_json,
    )

__all__ = [
    "Answer",
    "AnswerSentence",
    "AskdocError",
    "BuildReport",
    "ConfigError",
    "CorpusError",
    "Document",
    "Drift",
    "Engine",
    "IndexBusyError",
    "IndexCorruptError",
    "IndexMismatchError",
    "Manifest",
    "ModelError",
    "NoIndexError",
    "QuestionError",
    "Settings",
    "Skipped",
    "Source",
    "Status",
    "WatchedBuild",
    "answer_json",
    "keep_current",
    "open",
    "source_json",
]
_API = frozenset(__all__)


def __getattr__(name: str) -> Any:
    if name in _API:
        from askdoc import api

        return getattr(api, name)
    raise AttributeError(f"module 'askdoc' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
