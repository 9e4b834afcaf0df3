"""Incremental index builds: diff the corpus against the store, embed only what changed, publish
atomically, and report what happened.

Files are read, parsed and chunked in an isolated worker process under a per-file time limit
(``askdoc.isolation``); a bad file is skipped with a one-line reason. A kill at any moment leaves
the last published generation in force; the next build resumes from the staged rows and vectors.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from askdoc import readers, staging
from askdoc.chunking import ChunkSettings
from askdoc.config import Settings
from askdoc.embedder import Embedder
from askdoc.errors import CorpusError, IndexMismatchError, ReadError
from askdoc.generations import commit_generation, remove_stale_files
from askdoc.integrity import database_errors, seal
from askdoc.isolation import WorkerConfig, isolated_reader
from askdoc.sentence_vectors import encode_packed
from askdoc.store import (
    DB_NAME,
    DocumentRecord,
    IndexLock,
    Manifest,
    check_compatible,
    list_documents,
    read_manifest,
    transaction,
)

CHUNKER_VERSION = 2
EMBED_GROUP = staging.EMBED_GROUP

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
    skipped: tuple[readers.Skipped, ...] = ()
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


@dataclass
class _Plan:
    new: list[tuple[readers.FileEntry, str]] = field(default_factory=list)
    changed: list[tuple[readers.FileEntry, str]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str, readers.FileEntry]] = field(default_factory=list)
    touched: list[readers.FileEntry] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[readers.Skipped] = field(default_factory=list)


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


def file_sha256(entry: readers.FileEntry, max_bytes: int) -> str:
    """Content hash of a regular file, read without following links or blocking."""
    fd = os.open(entry.abspath, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ReadError("not a regular file any more")
        digest = hashlib.sha256()
        remaining = max_bytes + 1
        while remaining > 0:
            block = os.read(fd, min(1 << 20, remaining))
            if not block:
                break
            digest.update(block)
            remaining -= len(block)
        if remaining <= 0:
            raise ReadError(f"larger than {readers.size_label(max_bytes)}")
        return digest.hexdigest()
    finally:
        os.close(fd)


class Indexer:
    """Builds and updates the index in ``settings.index`` from ``settings.corpus``."""

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self.settings = settings
        self.embedder = embedder
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
        lock = IndexLock(self.settings.index, wait=wait)
        try:
            notes: list[str] = []
            conn, full = staging.open_database(self.db_path, full, dry_run, notes)
            try:
                with database_errors(self.db_path):
                    return self._build(
                        conn, entries, skipped, full, dry_run, progress, started, notes
                    )
            finally:
                conn.close()
        finally:
            self.embedder.settle()  # a model preloaded for nothing is not left loading
            lock.release()

    @property
    def db_path(self) -> Path:
        return self.settings.index / DB_NAME

    def _scan(self) -> tuple[list[readers.FileEntry], list[readers.Skipped]]:
        root = self.settings.corpus
        entries, skipped = readers.scan_corpus(root, self.max_bytes)
        if not entries and not skipped:
            raise CorpusError(f"no documents in {root} (supported: .txt .md .html .pdf .docx)")
        if not entries:
            raise CorpusError(f"none of the {len(skipped)} files in {root} could be read")
        return entries, skipped

    def _build(
        self,
        conn: sqlite3.Connection,
        entries: list[readers.FileEntry],
        skipped: list[readers.Skipped],
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
        old = read_manifest(conn, self.db_path)
        if old is not None and not full:
            try:
                check_compatible(old, model, chunking, self.settings.index)
            except IndexMismatchError as exc:
                notes.append(f"full rebuild: {exc}".split(": run")[0])
                full = True
        known = {} if full else list_documents(conn)
        plan = self._plan(entries, known, skipped)
        if dry_run:
            return self._report(plan, notes, conn, started, dry_run=True, full=full)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        staged = self._stage(conn, plan, notes, progress, _vector_salt(model))
        timings["read"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        embedded = self._embed_missing(conn, progress, refresh=full)
        timings["embed"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        manifest = self._publish(conn, plan, staged, full, old, model, chunking)
        timings["publish"] = time.perf_counter() - t0
        current = manifest or read_manifest(conn, self.db_path)
        if current is not None:
            remove_stale_files(self.settings.index, current)  # e.g. left by a killed build
        return self._report(
            plan,
            notes,
            conn,
            started,
            full=full,
            embedded=embedded,
            manifest=manifest,
            timings=timings,
        )

    def _plan(
        self,
        entries: list[readers.FileEntry],
        known: dict[str, DocumentRecord],
        skipped: list[readers.Skipped],
    ) -> _Plan:
        plan = _Plan(skipped=list(skipped))
        seen: set[str] = set()
        for entry in entries:
            seen.add(entry.path)
            record = known.get(entry.path)
            if record and record.size == entry.size and record.mtime == entry.mtime:
                plan.unchanged += 1
                continue
            try:
                digest = file_sha256(entry, self.max_bytes)
            except (OSError, ReadError) as exc:
                plan.skipped.append(readers.Skipped(entry.path, _reason(exc)))
                continue
            if record is None:
                plan.new.append((entry, digest))
            elif record.sha256 == digest:
                plan.unchanged += 1
                plan.touched.append(entry)
            else:
                plan.changed.append((entry, digest))
        gone = {p: r for p, r in known.items() if p not in seen}
        by_hash = {r.sha256: p for p, r in gone.items()}
        for entry, digest in list(plan.new):
            old_path = by_hash.pop(digest, None)
            if old_path is not None:
                plan.new.remove((entry, digest))
                plan.renamed.append((old_path, entry.path, entry))
                del gone[old_path]
        plan.removed = sorted(gone)
        return plan

    def _stage(
        self,
        conn: sqlite3.Connection,
        plan: _Plan,
        notes: list[str],
        progress: Progress | None,
        salt: str,
    ) -> set[str]:
        """Read and chunk new and changed files (in the isolated reader, under the per-file time
        limit) into the staging table, one small commit per file."""
        conn.execute("DELETE FROM staged_documents")
        todo = plan.new + plan.changed
        staged: set[str] = set()
        if not todo:
            return staged
        self.embedder.preload()  # the model loads while the files are read (~0.3 s saved)
        config = WorkerConfig(self.max_bytes, str(self.embedder.path), self.chunk_settings)
        with isolated_reader(config, self.settings.file_timeout) as reader:
            for done, (entry, _digest) in enumerate(todo, 1):
                if progress:
                    progress("read", done - 1, len(todo))
                try:
                    result = reader.read(entry)
                except ReadError as exc:
                    plan.skipped.append(readers.Skipped(entry.path, _reason(exc)))
                    continue
                notes.extend(f"{entry.path}: {note}" for note in result.document.notes)
                read = replace(entry, size=result.size, mtime=result.mtime)
                chunks = list(result.chunks)
                staging.stage_document(conn, read, result.sha256, result.document, chunks, salt)
                staged.add(entry.path)
        if progress:
            progress("read", len(todo), len(todo))
        return staged

    def _embed_missing(
        self, conn: sqlite3.Connection, progress: Progress | None, refresh: bool = False
    ) -> int:
        """Embed every staged passage whose vector is not stored yet (all of them when
        ``refresh``); commit group by group so a killed build resumes where it stopped."""
        total = staging.collect_pending(conn, refresh)
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

        def advance(n: int) -> None:
            nonlocal done
            done += n
            if progress:
                progress("embed", done, total)

        for group in staging.pending_groups(conn):
            vectors, blobs = encode_packed(self.embedder, group, self.settings.batch_size, advance)
            staging.store_vectors(conn, [h for h, _, _ in group], vectors, blobs)
        return total

    def _publish(
        self,
        conn: sqlite3.Connection,
        plan: _Plan,
        staged: set[str],
        full: bool,
        old: Manifest | None,
        model: dict[str, Any],
        chunking: dict[str, Any],
    ) -> Manifest | None:
        nothing = not (staged or plan.removed or plan.renamed or full)
        if nothing and old is not None:
            if plan.touched:
                with transaction(conn):
                    staging.touch(conn, plan.touched)
                    seal(conn)
            return None
        with transaction(conn):
            if full:
                conn.execute("DELETE FROM chunks")
                conn.execute("DELETE FROM documents")
            for old_path, _new_path, entry in plan.renamed:
                staging.rename(conn, old_path, entry)
            staging.touch(conn, plan.touched)
            for path in plan.removed + sorted(staged):
                staging.delete_document(conn, path)
            staging.promote_staged(conn)
            conn.execute("DELETE FROM vectors WHERE hash NOT IN (SELECT text_hash FROM chunks)")
            conn.execute("DELETE FROM sentences WHERE hash NOT IN (SELECT text_hash FROM chunks)")
            manifest = commit_generation(
                conn, self.settings.index, model, chunking, self.settings.exact_below
            )
        return manifest

    def _report(
        self,
        plan: _Plan,
        notes: list[str],
        conn: sqlite3.Connection,
        started: float,
        dry_run: bool = False,
        full: bool = False,
        embedded: int = 0,
        manifest: Manifest | None = None,
        timings: dict[str, float] | None = None,
    ) -> BuildReport:
        current = manifest or read_manifest(conn, self.db_path)
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


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:200]


def _vector_salt(model: dict[str, Any]) -> str:
    """Vectors are keyed by model and text: another model never reuses a cached vector."""
    return f"{model.get('weights_sha256')}:{model.get('dimension')}\n"
