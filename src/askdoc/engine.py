"""The one engine behind the TUI, ``askdoc ask``, ``askdoc eval`` and ``import askdoc``."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from askdoc.answer import AnswerParams, compose, make_sources
from askdoc.config import MODES, Settings, checked
from askdoc.embedder import Embedder
from askdoc.errors import AskdocError, ConfigError, ModelError, QuestionError
from askdoc.followup import is_follow_up, rewrite_follow_up
from askdoc.index.location import StoreLocation
from askdoc.index.manifest import Manifest
from askdoc.index.planning import applies, reader_fingerprint
from askdoc.index.schema import DocumentRecord, SkippedRecord
from askdoc.index.store import Store, open_builder, open_store, read_facts
from askdoc.index.writer import BuildReport, Progress, chunking_settings, model_manifest
from askdoc.ingest import Skipped, scan_corpus
from askdoc.refusal import RefusalModel, without_names
from askdoc.retrieval import FusionParams, search
from askdoc.text import clean_text, content_terms
from askdoc.types import Answer, Document, Source


def prepare_question(raw: str, limit: int, follows: str | None = None) -> tuple[str, str]:
    """(clean question, notice). Control characters go; long questions are cut with a notice.
    A question with no word to search for is refused, unless it is a follow-up of ``follows``
    ("and when was that?")."""
    question = " ".join(clean_text(raw).split())
    notice = ""
    if len(question) > limit:
        question = question[:limit]
        notice = f"question cut to its first {limit} characters"
    if not content_terms(question) and not (follows and is_follow_up(question)):
        raise QuestionError("please ask a question: there is nothing in it to search for")
    return question, notice


@dataclass(frozen=True)
class Drift:
    """Corpus files added, changed (size or mtime) or removed since the last build."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    @property
    def any(self) -> bool:
        return bool(self.added or self.changed or self.removed)


@dataclass(frozen=True)
class Status:
    """What ``Engine.status`` found: the manifest of the last build (None without an index),
    the drift of the corpus since, and a one-line problem ("" when there is none)."""

    index: Path | str
    """The index folder, or the Milvus collection and where it is."""
    corpus: Path
    manifest: Manifest | None
    drift: Drift
    problem: str = ""
    skipped: tuple[Skipped, ...] = ()
    """Files left out: refused by the scan, or remembered as unreadable by the last build."""


class Engine:
    """An index and its corpus: answers questions, searches, builds and reports status.

    Nothing loads in the constructor: the index opens and the model loads on first use (or with
    ``load``). Safe to share between threads (one question at a time). A context manager:
    ``close`` on exit."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self._reader: Store | None = None
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
            self._embedder = Embedder(
                self.settings.model, self.settings.backend, self.settings.model_cache
            )
        return self._embedder

    @property
    def notice(self) -> str:
        """One line for the user about the model (the ONNX path fell back to torch) and the
        index (a damaged FAISS file is served from the stored vectors until it is rewritten),
        or ""."""
        parts = (
            self._embedder.notice if self._embedder is not None else "",
            self._reader.notice if self._reader is not None else "",
        )
        return "; ".join(part for part in parts if part)

    @property
    def ready(self) -> bool:
        """The index is open and the model loaded (never raises)."""
        return self._reader is not None and self._embedder is not None and self._embedder.loaded

    def load(self) -> None:
        """Open the index (fast; checks the model and chunking match), then load the model (slow):
        a missing or mismatched index is reported before the wait for the model."""
        with self._lock:
            self._open_with_model()
            self.embedder.set_threads(1)

    def open_index(self) -> Store:
        with self._lock:
            if self._reader is None:
                self._reader = open_store(
                    self.settings,
                    model_manifest(self.embedder),
                    chunking_settings(self.settings, self.embedder),
                )
            return self._reader

    def preload(self) -> None:
        """Start reading the model in the background, if its ONNX export is there (``load``
        and ``ask`` wait for it; a model that cannot be had is reported by them)."""
        try:
            embedder = self.embedder
        except ModelError:
            return  # load() raises it again, where the caller reports it
        embedder.preload()

    def _open_with_model(self) -> Store:
        """Open the index while onnxruntime reads the model in the background (it releases
        the GIL: ~0.2 s saved on a fresh `askdoc ask`); both are ready on return."""
        self.embedder.preload()
        try:
            reader = self.open_index()
        except BaseException:
            self.embedder.settle()  # no model half-loaded in a thread behind an error
            raise
        self.embedder.load()
        return reader

    def close(self) -> None:
        """Close the index (it reopens on the next question)."""
        with self._lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        top_k = self.settings.top_k if k is None else checked("top_k", k)
        text, notice = prepare_question(question, self.settings.max_question_chars, previous)
        searched = rewrite_follow_up(text, previous)
        with self._lock:
            reader = self._open_with_model()
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
                    top_k,
                    mode or self.settings.mode,
                    self.fusion,
                    timings,
                )
                t1 = time.perf_counter()
                spans = [(h.chunk.doc_path, h.chunk.start, h.chunk.end) for h in hits]
                pooled = dict(
                    zip(spans, reader.sentence_vectors_many(spans, dimension), strict=True)
                )
                answer = compose(
                    searched,
                    searched,
                    hits,
                    vector,
                    self._embed_sentences,
                    reader.term_count,
                    manifest.chunks,
                    self.answer_params,
                    lambda hit: pooled[(hit.chunk.doc_path, hit.chunk.start, hit.chunk.end)],
                    masked_vector,
                )
            timings["answer"] = time.perf_counter() - t1
        message = "; ".join(m for m in (answer.message, notice) if m)
        return replace(answer, question=text, message=message, timings=timings)

    def search(
        self, query: str, k: int | None = None, mode: str | None = None
    ) -> tuple[Source, ...]:
        """The ``k`` best passages for ``query`` as numbered Sources (no answer step; no
        highlights). ``mode="lexical"`` needs no model."""
        text, _ = prepare_question(query, self.settings.max_question_chars)
        mode = mode or self.settings.mode
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        with self._lock:
            reader = self.open_index()
            vector = None
            if mode != "lexical":
                self.embedder.load()
                vector = self.embedder.encode_query(text)
            top_k = self.settings.top_k if k is None else checked("top_k", k)
            hits = search(reader, vector, text, top_k, mode, self.fusion)
        return make_sources(hits, {})

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
                spans = [(s.path, s.start, s.end) for s in sources]
                return reader.sentence_vectors_many(spans, dimension)

    def document(self, path: str) -> Document | None:
        """The stored document at ``path`` (relative to the corpus), or None."""
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
        builder = open_builder(self.settings, self.embedder)
        report = builder.build(full, dry_run, wait, progress)
        if self.embedder.loaded:
            self.embedder.set_threads(1)
        return report

    def status(self) -> Status:
        """Index facts and corpus drift, without loading the model (no torch import)."""
        facts = read_facts(self.settings)
        where = StoreLocation.of(self.settings).describe(self.settings)
        index = self.settings.index if where == str(self.settings.index) else where
        if facts is None:
            return Status(index, self.settings.corpus, None, Drift(), "no index yet")
        manifest, known, remembered = facts.manifest, facts.documents, facts.skipped
        problem = ""
        if manifest is None:
            problem = "the index is empty: run `askdoc index`"
        skipped: tuple[Skipped, ...] = ()
        try:
            drift, skipped = corpus_drift(self.settings, known, remembered)
        except AskdocError as exc:
            drift, problem = Drift(), str(exc)
        return Status(index, self.settings.corpus, manifest, drift, problem, skipped)


def refusal_model(settings: Settings) -> RefusalModel:
    """The refusal model the settings ask for: ``refusal_weights`` (one weight per evidence
    feature, then the bias, written by ``askdoc eval --calibrate``) or the shipped one."""
    if not settings.refusal_weights:
        return RefusalModel()
    *weights, bias = settings.refusal_weights
    return RefusalModel(tuple(weights), bias)


def corpus_drift(
    settings: Settings,
    known: Mapping[str, DocumentRecord],
    remembered: Mapping[str, SkippedRecord] | None = None,
) -> tuple[Drift, tuple[Skipped, ...]]:
    """Files added, changed (size or mtime) or removed since the last build, and the files left
    out (by the scan, or remembered unreadable and unchanged since): those are not drift."""
    entries, scanned_out = scan_corpus(settings.corpus, int(settings.max_file_mb * 1_048_576))
    fingerprint = reader_fingerprint(settings)
    memos = remembered or {}
    skipped = list(scanned_out)
    now = {e.path: e for e in entries}
    added, changed = [], []
    for path, entry in now.items():
        memo = memos.get(path)
        record = known.get(path)
        if applies(memo, entry, fingerprint) and memo is not None:
            skipped.append(Skipped(path, memo.reason))
        elif record is None:
            added.append(path)
        elif record.size != entry.size or record.mtime != entry.mtime:
            changed.append(path)
    drift = Drift(
        added=tuple(sorted(added)),
        changed=tuple(sorted(changed)),
        removed=tuple(sorted(p for p in known if p not in now)),
    )
    return drift, tuple(sorted(skipped, key=lambda s: s.path))
