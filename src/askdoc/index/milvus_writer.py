"""Index builds into Milvus (``MilvusWriter``): the embedded writer's plan (new, changed, renamed,
removed, touched, still-skipped files), read in the same isolated worker, with each file written
on its own so that a killed build resumes where it stopped.

A file's passages are written (upserted by id) before its stale ones are deleted and before its
text and its document row: a document row means the file is complete. A passage whose sha256
(model + embedded text) is already stored anywhere in the index takes that vector: a renamed
file, a copy, or the files a killed build had finished are never embedded again. The manifest
(model, chunking, generation, counts) is written last; another model means a full rebuild, as
in the embedded store. One writer at a time: a lease in the meta collection, taken over only
when it expired or its holder (on this machine) is gone.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from askdoc.config import Settings
from askdoc.embedder import Embedder
from askdoc.errors import IndexBusyError, IndexMismatchError, ReadError, TransientReadError
from askdoc.index.manifest import FORMAT_VERSION, Manifest, check_compatible
from askdoc.index.milvus_bm25 import passage_words
from askdoc.index.milvus_reader import (
    SKIP_PREFIX,
    connect,
    document_records,
    read_manifest,
    remembered_skips,
)
from askdoc.index.milvus_schema import (
    MAX_PATH,
    MilvusIndex,
    doc_id_of,
    encode_sentences,
    fits,
    int_id,
    passage_row_sha256,
    search_text,
)
from askdoc.index.planning import Plan, make_plan, reader_fingerprint, reason
from askdoc.index.schema import SkippedRecord, text_hash
from askdoc.index.writer import (
    BuildReport,
    IndexWriter,
    Progress,
    _vector_salt,
    chunking_settings,
    model_manifest,
)
from askdoc.ingest import FileEntry, Skipped, isolated_reader
from askdoc.types import Chunk, Document

GROUP_PASSAGES = 512
"""Files are read until this many passages wait, then embedded together and written."""
LEASE_SECONDS = 120.0
"""A writer renews its lease while it works; one not renewed for this long is taken over."""


@dataclass(frozen=True)
class _Read:
    """A file read and chunked, waiting for its vectors."""

    entry: FileEntry
    digest: str
    document: Document
    chunks: tuple[Chunk, ...]
    hashes: tuple[str, ...]


class Lease:
    """The one-writer lease: ``writer`` in the meta collection names its holder and when it
    expires. Taken when free, expired, or held by a process of this machine that is gone."""

    def __init__(self, index: MilvusIndex, wait: bool, force: bool = False) -> None:
        self.index = index
        self.owner = {"host": socket.gethostname(), "pid": os.getpid(), "id": uuid.uuid4().hex}
        self.renewed = -1e9
        while not force:
            holder = self._holder()
            if holder is None or not self._alive(holder):
                break
            if not wait:
                raise IndexBusyError(
                    f"another `askdoc index` (pid {holder.get('pid')} on {holder.get('host')}) "
                    f"is already building {index.where}; wait for it, or run with --wait"
                )
            time.sleep(1.0)
        self.renew()

    def _holder(self) -> dict[str, Any] | None:
        raw = self.index.meta(["writer"]).get("writer")
        try:
            holder = json.loads(raw) if raw else None
        except ValueError:
            return None
        return holder if isinstance(holder, dict) else None

    def _alive(self, holder: dict[str, Any]) -> bool:
        if float(holder.get("expires", 0)) < time.time():
            return False
        if holder.get("host") == self.owner["host"]:
            try:
                os.kill(int(holder.get("pid", 0)), 0)
            except (ProcessLookupError, ValueError):
                return False
            except PermissionError:
                return True
        return True

    def renew(self) -> None:
        """Extend the lease (at most every few seconds: it is one upsert)."""
        if time.monotonic() - self.renewed < 10.0:
            return
        value = {**self.owner, "expires": time.time() + LEASE_SECONDS}
        self.index.put_meta({"writer": json.dumps(value)})
        self.renewed = time.monotonic()

    def release(self) -> None:
        holder = self._holder()
        if holder is not None and holder.get("id") == self.owner["id"]:
            self.index.delete_meta(["writer"])


class MilvusWriter:
    """Builds and updates the index in Milvus from ``settings.corpus``."""

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self.settings = settings
        self.embedder = embedder
        self._files = IndexWriter(settings, embedder)  # the corpus scan and the reader's config
        self.embedded = 0
        self._lease: Lease | None = None

    def build(
        self,
        full: bool = False,
        dry_run: bool = False,
        wait: bool = False,
        progress: Progress | None = None,
    ) -> BuildReport:
        started = time.perf_counter()
        entries, skipped = self._files._scan()
        index = connect(self.settings, create=True)
        self._lease = None
        try:
            return self._build(index, entries, skipped, full, dry_run, wait, progress, started)
        finally:
            if self._lease is not None:
                self._lease.release()
            index.close()
            self.embedder.settle()

    def _build(
        self,
        index: MilvusIndex,
        entries: list[FileEntry],
        skipped: list[Skipped],
        full: bool,
        dry_run: bool,
        wait: bool,
        progress: Progress | None,
        started: float,
    ) -> BuildReport:
        model = model_manifest(self.embedder)
        chunking = chunking_settings(self.settings, self.embedder)
        notes: list[str] = []
        exists = index.exists()
        if exists and not dry_run:
            self._lease = Lease(index, wait)
        old = read_manifest(index) if exists else None
        if old is not None and not full:
            try:
                check_compatible(old, model, chunking, index.where)
            except IndexMismatchError as exc:
                notes.append(f"full rebuild: {exc}".split(": run")[0])
                full = True
        if exists and not old and not full and index.dimension() != self.embedder.dimension:
            full = True  # a first build, killed, with another model
        known = document_records(index) if exists and not full else {}
        remembered = remembered_skips(index) if exists and not full else {}
        fingerprint = reader_fingerprint(self.settings)
        plan = make_plan(entries, known, skipped, remembered, fingerprint, self._files.max_bytes)
        if dry_run:
            return self._report(plan, notes, started, old, dry_run=True, full=full)
        timings: dict[str, float] = {}
        changes = plan.new or plan.changed or plan.renamed or plan.removed or full or old is None
        if full and exists:
            index.drop()
        index.create(self.embedder.dimension)
        if self._lease is None or full:
            self._lease = Lease(index, wait=False, force=self._lease is not None)
        interrupted = index.meta(["state"]).get("state") == "building"
        if changes:
            index.put_meta({"state": "building"})
        t0 = time.perf_counter()
        self._touch(index, plan.touched)
        todo = plan.new + plan.changed + [(e, known[a].sha256) for a, _, e in plan.renamed]
        self._write_files(index, todo, plan, fingerprint, model, notes, progress)
        # after the writes: a renamed file's passages took their vectors from the old ones
        for path in plan.removed + [old_path for old_path, _, _ in plan.renamed]:
            doc_id = doc_id_of(path)
            index.delete_passages(index.passage_ids(doc_id))
            index.delete_document(doc_id)
        if interrupted:
            self._sweep_orphans(index)
        timings["write"] = time.perf_counter() - t0
        manifest = old
        if changes or interrupted or old is None:
            manifest = self._publish(index, model, chunking, old)
        return self._report(plan, notes, started, manifest, full=full, timings=timings)

    def _touch(self, index: MilvusIndex, entries: list[FileEntry]) -> None:
        """Files with new mtimes and the same bytes: their rows take the new size and mtime."""
        for entry in entries:
            row = index.document_row(doc_id_of(entry.path))
            if row is not None:
                row = {k: v for k, v in row.items() if k != "unused"}
                index.upsert_document({**row, "size": entry.size, "mtime": entry.mtime})

    def _write_files(
        self,
        index: MilvusIndex,
        todo: list[tuple[FileEntry, str]],
        plan: Plan,
        fingerprint: str,
        model: dict[str, Any],
        notes: list[str],
        progress: Progress | None,
    ) -> None:
        """Read every file of ``todo`` (in groups of about GROUP_PASSAGES passages), embed what
        no stored vector covers, and write each file; remember files that cannot be read."""
        skips = dict(plan.still_skipped)
        salt = _vector_salt(model)
        model_key = hashlib.sha256(json.dumps(model, sort_keys=True).encode()).hexdigest()
        group: list[_Read] = []
        waiting = 0
        if todo:
            self.embedder.preload()
            with isolated_reader(self._files.worker_config, self.settings.file_timeout) as reader:
                for done, (entry, digest) in enumerate(todo, 1):
                    if progress:
                        progress("read", done - 1, len(todo))
                    if self._lease is not None:
                        self._lease.renew()
                    read = self._read(reader, entry, digest, salt, plan, skips, fingerprint)
                    if read is None:
                        continue
                    notes.extend(f"{entry.path}: {note}" for note in read.document.notes)
                    group.append(read)
                    waiting += len(read.chunks)
                    if waiting >= GROUP_PASSAGES:
                        self._write_group(index, group, model_key, progress)
                        group, waiting = [], 0
                self._write_group(index, group, model_key, progress)
            if progress:
                progress("read", len(todo), len(todo))
        current = set(remembered_skips(index))
        index.put_meta({_skip_key(p): json.dumps(m.__dict__) for p, m in skips.items()})
        index.delete_meta(_skip_key(p) for p in current - set(skips))

    def _read(
        self,
        reader: Any,
        entry: FileEntry,
        digest: str,
        salt: str,
        plan: Plan,
        skips: dict[str, SkippedRecord],
        fingerprint: str,
    ) -> _Read | None:
        try:
            result = reader.read(entry)
            _check_sizes(entry.path, result.chunks)
        except ReadError as exc:
            plan.skipped.append(Skipped(entry.path, reason(exc)))
            if not isinstance(exc, TransientReadError):
                skips[entry.path] = SkippedRecord(
                    entry.path, entry.size, entry.mtime, digest, reason(exc), fingerprint
                )
            return None
        entry = replace(entry, size=result.size, mtime=result.mtime)
        chunks = tuple(result.chunks)
        hashes = tuple(text_hash(salt + c.embed_text()) for c in chunks)
        return _Read(entry, result.sha256, result.document, chunks, hashes)

    def _write_group(
        self, index: MilvusIndex, group: list[_Read], model_key: str, progress: Progress | None
    ) -> None:
        if not group:
            return
        wanted = [h for read in group for h in read.hashes]
        stored = index.passages_by_hash(wanted, model_key)
        vectors: dict[str, tuple[list[float], str]] = {
            h: (list(row["dense"]), str(row["sentences"])) for h, row in stored.items()
        }
        missing: dict[str, tuple[str, str, int]] = {}
        for read in group:
            for chunk, digest in zip(read.chunks, read.hashes, strict=True):
                if digest not in vectors and digest not in missing:
                    body = len(chunk.heading) + 1 if chunk.heading else 0
                    missing[digest] = (digest, chunk.embed_text(), body)
        if missing:
            self._embed(list(missing.values()), vectors, progress)
        for read in group:
            self._write_file(index, read, vectors, model_key)

    def _embed(
        self,
        todo: list[tuple[str, str, int]],
        vectors: dict[str, tuple[list[float], str]],
        progress: Progress | None,
    ) -> None:
        if not self.embedder.loaded:
            if progress:
                progress("model", 0, 1)
            self.embedder.load()
            if progress:
                progress("model", 1, 1)
        self.embedder.set_threads(self.settings.index_threads)
        before = self.embedded

        def advance(n: int) -> None:
            self.embedded += n
            if progress:
                progress("embed", self.embedded, before + len(todo))

        dense, blobs = self.embedder.encode_packed(todo, self.settings.batch_size, advance)
        self.embedded = before + len(todo)
        data = np.ascontiguousarray(dense, dtype=np.float32)
        for (digest, _, _), vector, blob in zip(todo, data, blobs, strict=True):
            vectors[digest] = (vector.tolist(), encode_sentences(blob))

    def _write_file(
        self,
        index: MilvusIndex,
        read: _Read,
        vectors: dict[str, tuple[list[float], str]],
        model_key: str,
    ) -> None:
        path = read.entry.path
        doc_id = doc_id_of(path)
        rows: list[dict[str, Any]] = []
        for chunk, digest in zip(read.chunks, read.hashes, strict=True):
            dense, sentences = vectors[digest]
            row: dict[str, Any] = {
                "id": int_id("passage", path, chunk.start, chunk.end, digest),
                "doc_id": doc_id,
                "path": path,
                "ordinal": chunk.ordinal,
                "text": chunk.text,
                "heading": chunk.heading,
                "search": search_text(chunk.heading, chunk.text),
                "span_start": chunk.start,
                "span_end": chunk.end,
                "line_start": chunk.line_start,
                "line_end": chunk.line_end,
                "page": chunk.page or 0,
                "file_sha256": read.digest,
                "chunk_sha256": digest,
                "model": model_key,
                "sentences": sentences,
                "dense": dense,
            }
            row["row_sha256"] = passage_row_sha256(row)
            rows.append(row)
        stored = index.passage_ids(doc_id)  # an id holds its path: every row it may replace
        stale = stored - {int(r["id"]) for r in rows}
        index.upsert_passages(rows, stored)
        index.delete_passages(stale)
        doc = read.document
        data = json.dumps(
            {
                "text": doc.text,
                "headings": [[h.offset, h.level, h.title] for h in doc.headings],
                "page_starts": list(doc.page_starts),
                "notes": list(doc.notes),
            },
            ensure_ascii=True,
        )
        parts = index.put_text(doc_id, data)
        index.upsert_document(
            {
                "doc_id": doc_id,
                "path": path,
                "size": read.entry.size,
                "mtime": read.entry.mtime,
                "kind": doc.kind,
                "sha256": read.digest,
                "content_sha256": hashlib.sha256(data.encode("ascii")).hexdigest(),
                "passages": len(rows),
                "words": sum(passage_words(c.text, c.heading) for c in read.chunks),
                "parts": parts,
            }
        )

    def _sweep_orphans(self, index: MilvusIndex) -> None:
        """After a killed build: passages and texts of files that never got their row."""
        complete = {int(r["doc_id"]) for r in index.document_rows()}
        rows = index.all_passage_docs()
        orphans = [pid for pid, doc in rows if doc not in complete]
        index.delete_passages(orphans)
        for doc in {doc for _, doc in rows if doc not in complete}:
            index.delete_document(doc)

    def _publish(
        self,
        index: MilvusIndex,
        model: dict[str, Any],
        chunking: dict[str, Any],
        old: Manifest | None,
    ) -> Manifest:
        index.flush()
        manifest = Manifest(
            format_version=FORMAT_VERSION,
            model=model,
            chunking=chunking,
            generation=(old.generation + 1) if old is not None else 1,
            faiss_file="",
            faiss_sha256="",
            faiss_kind="milvus",
            built_at=time.time(),
            documents=index.count(index.names.documents),
            chunks=index.count(index.names.passages),
        )
        raw = manifest.to_json()
        words = sum(int(row["words"]) for row in index.document_rows())
        index.put_meta(
            {
                "words": str(words),
                "manifest": raw,
                "manifest_sha256": hashlib.sha256(raw.encode("utf-8")).hexdigest(),
                "state": "ready",
            }
        )
        index.flush()
        return manifest

    def _report(
        self,
        plan: Plan,
        notes: list[str],
        started: float,
        manifest: Manifest | None,
        dry_run: bool = False,
        full: bool = False,
        timings: dict[str, float] | None = None,
    ) -> BuildReport:
        failed = {s.path for s in plan.skipped}
        return BuildReport(
            added=tuple(e.path for e, _ in plan.new if e.path not in failed),
            updated=tuple(e.path for e, _ in plan.changed if e.path not in failed),
            removed=tuple(plan.removed),
            renamed=tuple((a, b) for a, b, _ in plan.renamed),
            unchanged=plan.unchanged,
            skipped=tuple(plan.skipped),
            notes=tuple(notes),
            chunks=manifest.chunks if manifest else 0,
            documents=manifest.documents if manifest else 0,
            embedded=self.embedded,
            seconds=time.perf_counter() - started,
            dry_run=dry_run,
            full=full,
            generation=manifest.generation if manifest else 0,
            timings=timings or {},
        )


def _skip_key(path: str) -> str:
    return SKIP_PREFIX + hashlib.sha256(path.encode("utf-8", "surrogatepass")).hexdigest()


def _check_sizes(path: str, chunks: tuple[Chunk, ...] | list[Chunk]) -> None:
    """What Milvus cannot hold is a reason to skip the file, said in one line."""
    if not fits(path, MAX_PATH):
        raise ReadError("its path is longer than Milvus stores (4,096 bytes)")
    for chunk in chunks:
        if not fits(search_text(chunk.heading, chunk.text)):
            raise ReadError("a passage or heading is longer than Milvus stores (65,535 bytes)")
