"""The one engine behind the TUI, ``askdoc ask`` and ``askdoc eval``: load, ask, status, rebuild."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from askdoc import readers
from askdoc.answer import AnswerParams, compose
from askdoc.config import Settings
from askdoc.embedder import Embedder
from askdoc.errors import AskdocError, QuestionError
from askdoc.followup import is_follow_up, rewrite_follow_up
from askdoc.index_reader import IndexReader
from askdoc.indexer import BuildReport, Indexer, Progress, chunking_settings, model_manifest
from askdoc.refusal import RefusalModel, without_names
from askdoc.retrieval import FusionParams, search
from askdoc.store import (
    DB_NAME,
    DocumentRecord,
    Manifest,
    connect,
    list_documents,
    read_manifest,
)
from askdoc.text import content_terms, fts_term
from askdoc.types import Answer, Document, Source


def prepare_question(raw: str, limit: int, follows: str | None = None) -> tuple[str, str]:
    """(clean question, notice). Control characters go; long questions are cut with a notice.
    A question with no word to search for is refused, unless it is a follow-up of ``follows``
    ("and when was that?")."""
    question = " ".join(readers.clean_text(raw).split())
    notice = ""
    if len(question) > limit:
        question = question[:limit]
        notice = f"question cut to its first {limit} characters"
    if not content_terms(question) and not (follows and is_follow_up(question)):
        raise QuestionError("please ask a question: there is nothing in it to search for")
    return question, notice


@dataclass(frozen=True)
class Drift:
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    @property
    def any(self) -> bool:
        return bool(self.added or self.changed or self.removed)


@dataclass(frozen=True)
class Status:
    index: Path
    corpus: Path
    manifest: Manifest | None
    drift: Drift
    problem: str = ""


class Engine:
    """Loads the model and index once; answers questions; rebuilds the index."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self._reader: IndexReader | None = None
        self._lock = threading.RLock()
        self.fusion = FusionParams()
        self.answer_params = AnswerParams(
            max_sentences=settings.answer_sentences,
            min_confidence=settings.min_confidence,
            refusal=refusal_model(settings),
        )

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = Embedder(self.settings.model)
        return self._embedder

    @property
    def ready(self) -> bool:
        """The index is open and the model loaded (never raises)."""
        return self._reader is not None and self._embedder is not None and self._embedder.loaded

    def load(self) -> None:
        """Open the index (fast; checks the model and chunking match), then load the model (slow):
        a missing or mismatched index is reported before the wait for the model."""
        with self._lock:
            self.open_index()
            self.embedder.load()
            self.embedder.set_threads(1)

    def open_index(self) -> IndexReader:
        with self._lock:
            if self._reader is None:
                self._reader = IndexReader(
                    self.settings.index,
                    model=model_manifest(self.embedder),
                    chunking=chunking_settings(self.settings, self.embedder),
                )
            return self._reader

    def close(self) -> None:
        with self._lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    def ask(
        self,
        question: str,
        k: int | None = None,
        mode: str | None = None,
        previous: str | None = None,
    ) -> Answer:
        """Answer one question. ``previous`` is the question a follow-up leans on (see
        ``next_context``): a question that cannot stand alone is searched and answered as
        ``previous`` + the question, exactly as if that had been asked."""
        text, notice = prepare_question(question, self.settings.max_question_chars, previous)
        searched = rewrite_follow_up(text, previous)
        with self._lock:
            reader = self.open_index()
            self.embedder.load()
            timings: dict[str, float] = {}
            dimension = self.embedder.dimension
            t0 = time.perf_counter()
            vector = self.embedder.encode_query(searched)
            masked = without_names(searched)
            masked_vector = vector if masked == searched else self.embedder.encode_query(masked)
            timings["embed"] = time.perf_counter() - t0
            with reader.snapshot() as manifest:  # one version of the index for the whole answer
                hits = search(
                    reader,
                    vector,
                    searched,
                    k or self.settings.top_k,
                    mode or self.settings.mode,
                    self.fusion,
                    timings,
                )
                t1 = time.perf_counter()
                answer = compose(
                    searched,
                    searched,
                    hits,
                    vector,
                    self._embed_sentences,
                    lambda term: reader.term_frequency(fts_term(term)),
                    manifest.chunks,
                    self.answer_params,
                    lambda hit: reader.sentence_vectors(
                        hit.chunk.doc_path, hit.chunk.start, hit.chunk.end, dimension
                    ),
                    masked_vector,
                )
            timings["answer"] = time.perf_counter() - t1
        message = "; ".join(m for m in (answer.message, notice) if m)
        return replace(answer, question=text, message=message, timings=timings)

    def _embed_sentences(self, texts: Sequence[str]) -> np.ndarray:
        return self.embedder.encode(list(texts), batch_size=64)

    def sentence_vectors(
        self, sources: Sequence[Source]
    ) -> list[dict[tuple[int, int], np.ndarray]]:
        """Per source, the sentence vectors pooled at index time, keyed by absolute span (for
        checking a generated answer against the sources)."""
        with self._lock:
            reader = self.open_index()
            dimension = self.embedder.dimension
            with reader.snapshot():
                return [reader.sentence_vectors(s.path, s.start, s.end, dimension) for s in sources]

    def document(self, path: str) -> Document | None:
        with self._lock:
            reader = self.open_index()
            with reader.snapshot():
                return reader.document(path)

    def build(
        self,
        full: bool = False,
        dry_run: bool = False,
        wait: bool = False,
        progress: Progress | None = None,
    ) -> BuildReport:
        """Update the index; a loaded reader switches to the new generation on its next query."""
        report = Indexer(self.settings, self.embedder).build(full, dry_run, wait, progress)
        if self.embedder.loaded:
            self.embedder.set_threads(1)
        return report

    def status(self) -> Status:
        """Index facts and corpus drift, without loading the model (no torch import)."""
        db = self.settings.index / DB_NAME
        if not db.is_file():
            return Status(self.settings.index, self.settings.corpus, None, Drift(), "no index yet")
        conn = connect(db)
        try:
            manifest = read_manifest(conn, db)
            known = list_documents(conn)
        finally:
            conn.close()
        problem = ""
        if manifest is None:
            problem = "the index is empty: run `askdoc index`"
        try:
            drift = corpus_drift(self.settings, known)
        except AskdocError as exc:
            drift, problem = Drift(), str(exc)
        return Status(self.settings.index, self.settings.corpus, manifest, drift, problem)


def refusal_model(settings: Settings) -> RefusalModel:
    """The refusal model the settings ask for: ``refusal_weights`` (5+ weights then the bias,
    written by ``askdoc eval --calibrate``) or the shipped one."""
    if not settings.refusal_weights:
        return RefusalModel()
    *weights, bias = settings.refusal_weights
    return RefusalModel(tuple(weights), bias)


def corpus_drift(settings: Settings, known: Mapping[str, DocumentRecord]) -> Drift:
    """Files added, changed (size or mtime) or removed since the last build."""
    entries, _ = readers.scan_corpus(settings.corpus, int(settings.max_file_mb * 1_048_576))
    now = {e.path: e for e in entries}
    changed = []
    for path, entry in now.items():
        record = known.get(path)
        if record is not None and (
            getattr(record, "size", None) != entry.size
            or getattr(record, "mtime", None) != entry.mtime
        ):
            changed.append(path)
    return Drift(
        added=tuple(sorted(p for p in now if p not in known)),
        changed=tuple(sorted(changed)),
        removed=tuple(sorted(p for p in known if p not in now)),
    )
