"""Planning a build: compare the scanned corpus with the indexed documents and the remembered
skipped files, and decide what to read, rename, touch, remove, or leave skipped unread.

A file is recognised as unchanged by its size and mtime, then by its sha256. A file the reader
could not read (binary, encrypted, broken, too long a line, too slow) is remembered with its
size, mtime, sha256, reason and the reading settings (``reader_fingerprint``): it is skipped
again, unread, until one of them changes or the build is full.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass, field

from askdoc.config import Settings
from askdoc.errors import ReadError
from askdoc.index.schema import DocumentRecord, SkippedRecord
from askdoc.ingest import FileEntry, Skipped, size_label

READER_VERSION = 1
"""Bump when a parser reads differently: every remembered skipped file is then read again."""


@dataclass
class Plan:
    """What a build will do with each scanned file."""

    new: list[tuple[FileEntry, str]] = field(default_factory=list)
    changed: list[tuple[FileEntry, str]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str, FileEntry]] = field(default_factory=list)
    touched: list[FileEntry] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    still_skipped: dict[str, SkippedRecord] = field(default_factory=dict)
    """Remembered skipped files that did not change, by path, as they are now."""


def reader_fingerprint(settings: Settings) -> str:
    """The settings a file's reading depends on; when they change, skipped files are retried."""
    return json.dumps(
        {
            "version": READER_VERSION,
            "max_file_mb": settings.max_file_mb,
            "file_timeout": settings.file_timeout,
            "max_line_chars": settings.max_line_chars,
        },
        sort_keys=True,
    )


def file_sha256(entry: FileEntry, max_bytes: int) -> str:
    """Content hash of a regular file, opened without following links or blocking. (A file
    still growing past ``max_bytes`` while it is hashed is hashed whole: the reader enforces the
    cap on what it reads.)"""
    fd = os.open(entry.abspath, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ReadError("not a regular file any more")
        if info.st_size > max_bytes:
            raise ReadError(f"larger than {size_label(max_bytes)}")
        return hashlib.file_digest(handle, "sha256").hexdigest()


def applies(record: SkippedRecord | None, entry: FileEntry, fingerprint: str) -> bool:
    """Whether a remembered skip still holds for ``entry`` without reading it (same size, mtime
    and reading settings)."""
    return (
        record is not None
        and record.reader == fingerprint
        and record.size == entry.size
        and record.mtime == entry.mtime
    )


def make_plan(
    entries: list[FileEntry],
    known: dict[str, DocumentRecord],
    skipped: list[Skipped],
    remembered: dict[str, SkippedRecord],
    fingerprint: str,
    max_bytes: int,
) -> Plan:
    """Sort every scanned file into the plan (hashing only files whose size or mtime changed)."""
    plan = Plan(skipped=list(skipped))
    by_digest = {r.sha256: r for r in remembered.values() if r.reader == fingerprint}
    seen: set[str] = set()
    for entry in entries:
        seen.add(entry.path)
        record = known.get(entry.path)
        if record and record.size == entry.size and record.mtime == entry.mtime:
            plan.unchanged += 1
            continue
        memo = remembered.get(entry.path)
        if applies(memo, entry, fingerprint) and memo is not None:
            _skip_again(plan, entry, memo)
            continue
        try:
            digest = file_sha256(entry, max_bytes)
        except (OSError, ReadError) as exc:
            plan.skipped.append(Skipped(entry.path, reason(exc)))
            continue
        memo = by_digest.get(digest)  # the same bytes, touched or renamed
        if memo is not None and (record is None or record.sha256 != digest):
            _skip_again(plan, entry, memo)
        elif record is None:
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


def _skip_again(plan: Plan, entry: FileEntry, memo: SkippedRecord) -> None:
    plan.skipped.append(Skipped(entry.path, memo.reason))
    plan.still_skipped[entry.path] = SkippedRecord(
        entry.path, entry.size, entry.mtime, memo.sha256, memo.reason, memo.reader
    )


def reason(exc: BaseException) -> str:
    """One line of at most 200 characters."""
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:200]
