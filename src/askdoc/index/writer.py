"""Index builds (``IndexWriter``): diff the corpus against the index, read and embed only what
changed, publish atomically, and report what happened.

The writer holds the write lock and the one database connection for the whole build; the steps
it takes are ``planning`` (what to do with each file), ``pending`` (each read file and each
group of vectors committed on its own, so a killed build resumes from them) and ``publish`` (one
transaction that the writer opens and commits). Files are read, parsed and chunked in an
isolated worker process under a per-file time limit (``askdoc.ingest.isolation``); a bad file is
skipped with a one-line reason. A kill at any moment leaves the last published generation in
force.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from askdoc.config import Settings
from askdoc.embedder import Embedder
from askdoc.errors import (
    CorpusError,
    IndexMismatchError,
    IndexWriteError,
    ReadError,
    TransientReadError,
)
from askdoc.index import pending, publish
from askdoc.index.integrity import remembered_skips, seal
from askdoc.index.lock import IndexLock
from askdoc.index.manifest import Manifest, check_compatible, read_manifest
from askdoc.index.planning import Plan, make_plan, reader_fingerprint, reason
from askdoc.index.publish import commit_generation, leftover_files, remove_stale_files
from askdoc.index.schema import DB_NAME, SkippedRecord, database_errors, list_documents, transaction
from askdoc.index.vectors import faiss_file_intact
from askdoc.ingest import (
    ChunkSettings,
    FileEntry,
    Skipped,
    WorkerConfig,
    isolated_reader,
    scan_corpus,
)

CHUNKER_VERSION = 2
COMMIT_SECONDS = 30.0
"""Embedding time after which the vectors embedded so far are committed, even mid-group."""
COMMIT_SLICE = 256
"""Passages embedded between two looks at the clock (a few seconds with the real model here)."""
clock = time.monotonic
"""The clock commits are timed by (a test replaces it)."""

_Embedded = tuple[list[tuple[str, str, int]], np.ndarray, list[bytes]]
"""Passages (hash, text, body start) embedded but not yet committed: vectors, sentence blobs."""

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): stage is "read" or "embed"."""


@dataclass(frozen=True)
class BuildReport:
    """What a build did (or, with dry_run, would do)."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    renamed: tuple[tuple[str, str], ...] = ()
    unchanged: int = 0
    skipped: tuple[Skipped, ...] = ()
    notes: tuple[str, ...] = ()
    chunks: int = 0
    embedded: int = 0
    documents: int = 0
    seconds: float = 0.0
    dry_run: bool = False
    full: bool = False
    generation: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.renamed or self.full)


def chunking_settings(settings: Settings, embedder: Embedder) -> dict[str, Any]:
    """What the manifest records about chunking; another value means a rebuild."""
    return {
        "version": CHUNKER_VERSION,
        "target_tokens": settings.chunk_tokens,
        "overlap_tokens": settings.chunk_overlap,
        "max_tokens": embedder.max_tokens,
    }


def model_manifest(embedder: Embedder) -> dict[str, Any]:
    return dict(json.loads(embedder.fingerprint.to_json()))


class IndexWriter:
    """Builds and updates the index in ``settings.index`` from ``settings.corpus``."""

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self.settings = settings
        self.embedder = embedder
        self.conn: sqlite3.Connection | None = None
        """The build's one connection, open while ``build`` runs."""
        self.max_bytes = int(settings.max_file_mb * 1_048_576)
        self.chunk_settings = ChunkSettings(
            max_tokens=embedder.max_tokens,
            target_tokens=settings.chunk_tokens,
            overlap_tokens=settings.chunk_overlap,
        )

    def build(
        self,
        full: bool = False,
        dry_run: bool = False,
        wait: bool = False,
        progress: Progress | None = None,
    ) -> BuildReport:
        """Bring the index up to date with the corpus. Holds the index lock throughout."""
        started = time.perf_counter()
        entries, skipped = self._scan()
        try:
            with IndexLock(self.settings.index, wait=wait):
                notes: list[str] = []
                conn, full = pending.open_database(self.db_path, full, dry_run, notes)
                self.conn = conn
                try:
                    with database_errors(self.db_path):
                        return self._build(
                            entries, skipped, full, dry_run, progress, started, notes
                        )
                finally:
                    self.conn = None
                    conn.close()
                    self.embedder.settle()  # a model preloaded for nothing is not left loading
        except OSError as exc:  # e.g. no space left for the FAISS file
            raise write_error(exc, self.settings.index) from None

    @property
    def db(self) -> sqlite3.Connection:
        """The build's connection (only while ``build`` runs)."""
        if self.conn is None:
            raise RuntimeError("IndexWriter.db is open only while build() runs")
        return self.conn

    @property
    def db_path(self) -> Path:
        return self.settings.index / DB_NAME

    @property
    def worker_config(self) -> WorkerConfig:
        """What the isolated reader process needs to read a file as this build does."""
        return WorkerConfig(
            self.max_bytes,
            self.embedder.tokens,
            self.chunk_settings,
            self.settings.max_line_chars,
        )

    def _scan(self) -> tuple[list[FileEntry], list[Skipped]]:
        root = self.settings.corpus
        entries, skipped = scan_corpus(root, self.max_bytes)
        if not entries and not skipped:
            raise CorpusError(f"no documents in {root} (supported: .txt .md .html .pdf .docx)")
        if not entries:
            raise CorpusError(f"none of the {len(skipped)} files in {root} could be read")
        return entries, skipped

    def _build(
        self,
        entries: list[FileEntry],
        skipped: list[Skipped],
        full: bool,
        dry_run: bool,
        progress: Progress | None,
        started: float,
        notes: list[str],
    ) -> BuildReport:
        model, chunking = (
            model_manifest(self.embedder),
            chunking_settings(self.settings, self.embedder),
        )
        old = read_manifest(self.db, self.db_path)
        self._clean_leftovers(old, dry_run, notes)
        if old is not None and not full:
            try:
                check_compatible(old, model, chunking, self.settings.index)
            except IndexMismatchError as exc:
                notes.append(f"full rebuild: {exc}".split(": run")[0])
                full = True
        known = {} if full else list_documents(self.db)
        remembered = {} if full else remembered_skips(self.db)
        fingerprint = reader_fingerprint(self.settings)
        plan = make_plan(entries, known, skipped, remembered, fingerprint, self.max_bytes)
        if dry_run:
            return self._report(plan, notes, started, dry_run=True, full=full)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        staged = self._stage(plan, notes, progress, _vector_salt(model), fingerprint)
        timings["read"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        embedded = self._embed_missing(progress, refresh=full)
        timings["embed"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        manifest = self._publish(plan, staged, full, old, model, chunking, notes)
        timings["publish"] = time.perf_counter() - t0
        current = manifest or read_manifest(self.db, self.db_path)
        if current is not None:
            remove_stale_files(self.settings.index, current)  # e.g. left by a killed build
        return self._report(
            plan,
            notes,
            started,
            full=full,
            embedded=embedded,
            manifest=manifest,
            timings=timings,
        )

    def _clean_leftovers(self, old: Manifest | None, dry_run: bool, notes: list[str]) -> None:
        """Remove (say) the files no generation uses: a failed or killed build's."""
        index = self.settings.index
        if dry_run:
            names = leftover_files(index, old)
            notes.extend(f"would remove {name}: left by a failed build" for name in names)
        else:
            # Through publish's name: the kill tests hook this module's own remove_stale_files
            # (called just after the publishing commit) as a moment of its own.
            names = publish.remove_stale_files(index, old)
            notes.extend(f"removed {name}: left by a failed build" for name in names)

    def _stage(
        self,
        plan: Plan,
        notes: list[str],
        progress: Progress | None,
        salt: str,
        fingerprint: str,
    ) -> set[str]:
        """Read and chunk new and changed files (in the isolated reader, under the per-file time
        limit) into the staging table, one small commit per file. A file the reader refuses is
        remembered as skipped (its own commit); skipped files no longer there are forgotten."""
        pending.clear_staged(self.db)
        todo = plan.new + plan.changed
        skips = dict(plan.still_skipped)
        staged: set[str] = set()
        if todo:
            self.embedder.preload()  # the model loads while the files are read (~0.3 s saved)
            with isolated_reader(self.worker_config, self.settings.file_timeout) as reader:
                for done, (entry, digest) in enumerate(todo, 1):
                    if progress:
                        progress("read", done - 1, len(todo))
                    try:
                        result = reader.read(entry)
                    except ReadError as exc:
                        plan.skipped.append(Skipped(entry.path, reason(exc)))
                        if not isinstance(exc, TransientReadError):  # depends on the content
                            memo = SkippedRecord(
                                entry.path,
                                entry.size,
                                entry.mtime,
                                digest,
                                reason(exc),
                                fingerprint,
                            )
                            skips[entry.path] = memo
                            pending.keep_skips(self.db, {entry.path: memo}, forget=False)
                        continue
                    notes.extend(f"{entry.path}: {note}" for note in result.document.notes)
                    read = replace(entry, size=result.size, mtime=result.mtime)
                    chunks = list(result.chunks)
                    pending.stage_document(
                        self.db, read, result.sha256, result.document, chunks, salt
                    )
                    staged.add(entry.path)
            if progress:
                progress("read", len(todo), len(todo))
        pending.keep_skips(self.db, skips)
        return staged

    def _embed_missing(self, progress: Progress | None, refresh: bool = False) -> int:
        """Embed every staged passage whose vector is not stored yet (all of them when
        ``refresh``); commit at the end of each group and at most every COMMIT_SECONDS of
        embedding (checked after each COMMIT_SLICE passages), so a killed build loses at most
        that much work: the next one embeds only what is still missing."""
        total = pending.collect_pending(self.db, refresh)
        done = 0
        if progress:
            progress("embed", 0, total)
        if not total:
            return 0
        if not self.embedder.loaded:  # ~10 s the first time: say so rather than sit at 0%
            if progress:
                progress("model", 0, 1)
            self.embedder.load()
            if progress:
                progress("model", 1, 1)
        self.embedder.set_threads(self.settings.index_threads)

        parts: list[_Embedded] = []

        def advance(n: int) -> None:
            nonlocal done
            done += n
            if progress:
                progress("embed", done, total)

        last_commit = clock()
        for group in pending.pending_groups(self.db):
            done_in_group = 0
            for begin in range(0, len(group), COMMIT_SLICE):
                part = group[begin : begin + COMMIT_SLICE]
                vectors, blobs = self.embedder.encode_packed(
                    part, self.settings.batch_size, advance
                )
                parts.append((part, vectors, blobs))
                done_in_group += len(part)
                if clock() - last_commit >= COMMIT_SECONDS or done_in_group == len(group):
                    self._store(parts)
                    last_commit = clock()
        return total

    def _store(self, parts: list[_Embedded]) -> None:
        """Commit the embedded slices (one transaction) and forget them."""
        hashes = [h for part, _, _ in parts for h, _, _ in part]
        vectors = np.concatenate([v for _, v, _ in parts])
        blobs = [b for _, _, own in parts for b in own]
        pending.store_vectors(self.db, hashes, vectors, blobs)
        parts.clear()

    def _publish(
        self,
        plan: Plan,
        staged: set[str],
        full: bool,
        old: Manifest | None,
        model: dict[str, Any],
        chunking: dict[str, Any],
        notes: list[str],
    ) -> Manifest | None:
        nothing = not (staged or plan.removed or plan.renamed or full)
        if nothing and old is not None and not faiss_file_intact(self.settings.index, old):
            notes.append(f"{old.faiss_file} is damaged or missing: written again from the vectors")
            nothing = False  # readers build it in memory meanwhile; they never write
        if nothing and old is not None:
            if plan.touched:
                with transaction(self.db):
                    pending.touch(self.db, plan.touched)
                    seal(self.db)
            return None
        with transaction(self.db):
            if full:
                pending.delete_everything(self.db)
            for old_path, _new_path, entry in plan.renamed:
                pending.rename(self.db, old_path, entry)
            pending.touch(self.db, plan.touched)
            for path in plan.removed + sorted(staged):
                pending.delete_document(self.db, path)
            pending.promote_staged(self.db)
            pending.delete_unused_vectors(self.db)
            manifest = commit_generation(
                self.db, self.settings.index, model, chunking, self.settings.exact_below
            )
        return manifest

    def _report(
        self,
        plan: Plan,
        notes: list[str],
        started: float,
        dry_run: bool = False,
        full: bool = False,
        embedded: int = 0,
        manifest: Manifest | None = None,
        timings: dict[str, float] | None = None,
    ) -> BuildReport:
        current = manifest or read_manifest(self.db, self.db_path)
        failed = {s.path for s in plan.skipped}
        return BuildReport(
            added=tuple(e.path for e, _ in plan.new if e.path not in failed),
            updated=tuple(e.path for e, _ in plan.changed if e.path not in failed),
            removed=tuple(plan.removed),
            renamed=tuple((a, b) for a, b, _ in plan.renamed),
            unchanged=plan.unchanged,
            skipped=tuple(plan.skipped),
            notes=tuple(notes),
            chunks=current.chunks if current else 0,
            documents=current.documents if current else 0,
            embedded=embedded,
            seconds=time.perf_counter() - started,
            dry_run=dry_run,
            full=full,
            generation=current.generation if current else 0,
            timings=timings or {},
        )


def write_error(exc: OSError, index: Path) -> IndexWriteError:
    """One line naming the file and the cause; the last committed index is intact."""
    where = exc.filename or index
    return IndexWriteError(
        f"{where}: {exc.strerror or exc}: the build stopped, the last built index is intact; "
        "run `askdoc index` again once this is fixed"
    )


def _vector_salt(model: dict[str, Any]) -> str:
    """Vectors are keyed by model and text: another model never reuses a cached vector."""
    return f"{model.get('weights_sha256')}:{model.get('dimension')}\n"
