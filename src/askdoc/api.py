"""The library API: ``askdoc.open`` an index, and the typed records it returns (docs/api.md).

``import askdoc`` stays light: ``askdoc/__init__.py`` loads this module on first use of one of
its names, and the model (torch) loads only when a question needs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from askdoc.config import Settings, load_settings
from askdoc.embedder import Embedder
from askdoc.engine import Drift, Engine, Status
from askdoc.errors import (
    AskdocError,
    ConfigError,
    CorpusError,
    IndexBusyError,
    IndexCorruptError,
    IndexMismatchError,
    ModelError,
    NoIndexError,
    QuestionError,
)
from askdoc.index.manifest import Manifest
from askdoc.index.writer import BuildReport
from askdoc.ingest import Skipped
from askdoc.render import answer_json, source_json
from askdoc.types import Answer, AnswerSentence, Document, Source
from askdoc.watch import WatchedBuild, keep_current

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


def open(
    index: str | Path = "index",
    corpus: str | Path | None = None,
    *,
    config: str | Path | None = None,
    embedder: Embedder | None = None,
    **settings: Any,
) -> Engine:
    """An Engine on the index folder ``index``, built from the documents in ``corpus``.

    Nothing is read yet: a missing index is reported by the first ``ask`` or ``search``
    (``NoIndexError``), and ``build()`` creates it. ``config`` is an ``askdoc.toml`` to start
    from (otherwise the defaults; neither ``./askdoc.toml`` nor ``ASKDOC_*`` variables are read);
    keyword arguments are Settings fields (``top_k=3``, ``mode="lexical"``, ...) and win over it.
    ``embedder`` replaces the packaged model (tests, or a model already loaded).
    """
    if config is not None:
        path = Path(config)
        if not path.is_file():
            raise ConfigError(f"settings file {path} does not exist")
        base = load_settings(config_file=path, environ={})
    else:
        base = Settings()
    chosen = base.with_overrides(index=index, corpus=corpus, **settings)
    return Engine(chosen, embedder)
