"""Safe file reading inside the corpus: scanning, opening without following links or blocking,
the size cap, printable names, and dispatch to the per-format parsers (``parsers``)."""

from __future__ import annotations

import errno
import logging
import os
import stat
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from askdoc.errors import CorpusError, ReadError, TransientReadError
from askdoc.ingest.parsers import PARSERS
from askdoc.types import Document

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")
TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm")


@dataclass(frozen=True)
class Skipped:
    """A file the scan or the reader left out, with a one-line reason."""

    path: str
    reason: str


@dataclass(frozen=True)
class FileEntry:
    """A regular file inside the corpus: printable relative posix path and resolved real path."""

    path: str
    abspath: Path
    size: int
    mtime: float


def display_name(name: str) -> str:
    """A printable, one-line, unambiguous form of a file name (repr-like escapes)."""
    if name.isprintable() and "\\" not in name:
        return name
    out = []
    for ch in name:
        if ch == "\\":
            out.append("\\\\")
        elif ch.isprintable():
            out.append(ch)
        elif 0xDC80 <= ord(ch) <= 0xDCFF:  # undecodable byte kept by surrogateescape
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        else:
            out.append(repr(ch)[1:-1] if ord(ch) > 0x7F else ascii(ch)[1:-1])
    return "".join(out)


def size_label(max_bytes: int) -> str:
    """``50 MB`` for a byte count (MB = 2**20 bytes), plain bytes below 1 MB."""
    if max_bytes >= 1 << 20:
        return f"{max_bytes / (1 << 20):.4g} MB"
    return f"{max_bytes} bytes"


# --- scanning --------------------------------------------------------------------------------

_KINDS = {stat.S_IFIFO: "FIFO", stat.S_IFSOCK: "socket", stat.S_IFDIR: "folder"}
_KINDS |= {stat.S_IFCHR: "character device", stat.S_IFBLK: "block device"}


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "unknown type")


def _supported(name: str) -> bool:
    return name.lower().endswith(SUPPORTED_SUFFIXES)


def _inside(real: str, root_real: str) -> bool:
    return real == root_real or real.startswith(root_real.rstrip("/") + "/")


def scan_corpus(root: Path, max_bytes: int) -> tuple[list[FileEntry], list[Skipped]]:
    """Walk ``root`` (sorted, deterministic) for supported regular files that stay inside it.

    Hidden names and unsupported suffixes are ignored silently; symlinks leaving the corpus,
    broken links, loops, special files and files above ``max_bytes`` are reported as Skipped.
    Directory symlinks are never followed (their targets inside the corpus are walked anyway).
    Nothing is opened, so FIFOs cannot block. Several paths to one file keep a single entry.
    """
    root_real = os.path.realpath(root)
    if not os.path.isdir(root_real):
        raise CorpusError(
            f"corpus folder {display_name(str(root))} does not exist or is not a folder"
        )
    found: list[tuple[FileEntry, bool]] = []
    skipped: list[Skipped] = []
    seen_dirs: set[tuple[int, int]] = set()
    stack: list[tuple[str, str]] = [(root_real, "")]
    while stack:
        dir_real, rel = stack.pop()
        try:
            st = os.stat(dir_real, follow_symlinks=False)
            with os.scandir(dir_real) as it:
                children = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            if not rel:
                raise CorpusError(f"cannot read corpus folder: {exc.strerror}") from exc
            skipped.append(Skipped(display_name(rel), f"cannot list folder: {exc.strerror}"))
            continue
        if (st.st_dev, st.st_ino) in seen_dirs:
            skipped.append(Skipped(display_name(rel), "folder already scanned (mount loop)"))
            continue
        seen_dirs.add((st.st_dev, st.st_ino))
        subdirs = []
        for child in children:
            if child.name.startswith("."):
                continue
            child_rel = f"{rel}/{child.name}" if rel else child.name
            outcome = _scan_entry(child, child_rel, root_real, max_bytes)
            if isinstance(outcome, Skipped):
                skipped.append(outcome)
            elif isinstance(outcome, tuple):
                found.append(outcome)
            elif outcome == "dir":
                subdirs.append((child.path, child_rel))
        stack.extend(reversed(subdirs))
    entries = sorted(_dedupe(found, skipped), key=lambda e: e.path)
    return entries, sorted(skipped, key=lambda s: s.path)


def _scan_entry(
    child: os.DirEntry[str], rel: str, root_real: str, max_bytes: int
) -> Skipped | tuple[FileEntry, bool] | str | None:
    """Classify one directory entry: a file entry (with is-symlink flag), "dir", Skipped or None."""
    shown = display_name(rel)
    try:
        lst = child.stat(follow_symlinks=False)
    except OSError as exc:
        return Skipped(shown, f"cannot stat: {exc.strerror}") if _supported(child.name) else None
    is_link = stat.S_ISLNK(lst.st_mode)
    if not is_link and stat.S_ISDIR(lst.st_mode):
        return "dir"
    real = child.path
    st = lst
    if is_link:
        try:
            st = os.stat(child.path)
        except OSError as exc:
            if not _supported(child.name):
                return None
            if exc.errno == errno.ELOOP:
                return Skipped(shown, "symlink loop")
            if exc.errno == errno.ENOENT:
                return Skipped(shown, "dangling symlink")
            return Skipped(shown, f"cannot follow symlink: {exc.strerror}")
        real = os.path.realpath(child.path)
        if stat.S_ISDIR(st.st_mode):
            inside = _inside(real, root_real)
            return None if inside else Skipped(shown, "symlink leaves the corpus")
    if not _supported(child.name):
        return None
    if not _inside(real, root_real):
        return Skipped(shown, "symlink leaves the corpus")
    if not stat.S_ISREG(st.st_mode):
        return Skipped(shown, f"not a regular file ({_kind(st.st_mode)})")
    if st.st_size > max_bytes:
        return Skipped(shown, f"larger than {size_label(max_bytes)}")
    return FileEntry(shown, Path(real), st.st_size, st.st_mtime), is_link


def _dedupe(found: list[tuple[FileEntry, bool]], skipped: list[Skipped]) -> list[FileEntry]:
    """Keep one entry per real file, preferring a real path over a symlink to it."""
    owner: dict[Path, str] = {}
    for entry, _ in sorted(found, key=lambda item: item[1]):  # stable: plain files first
        if entry.abspath in owner:
            skipped.append(Skipped(entry.path, f"same file as {owner[entry.abspath]}"))
        else:
            owner[entry.abspath] = entry.path
    return [entry for entry, _ in found if owner[entry.abspath] == entry.path]


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawFile:
    """The bytes of one file as read, with the size and mtime of what was read."""

    data: bytes
    size: int
    mtime: float


def read_bytes(entry: FileEntry, max_bytes: int) -> RawFile:
    """Read at most ``max_bytes`` of a regular file without following a final symlink or
    blocking (a FIFO swapped in after the scan is refused, never opened for reading). Every
    problem here is a state of the file system, not of the content: TransientReadError."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(entry.abspath, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise TransientReadError("file was replaced by a symlink") from exc
        raise TransientReadError(f"cannot open: {exc.strerror}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise TransientReadError(f"not a regular file ({_kind(st.st_mode)})")
        if not _opened_as(fd, entry.abspath):
            raise TransientReadError("file was moved or replaced after the scan")
        if st.st_size > max_bytes:
            raise TransientReadError(f"larger than {size_label(max_bytes)}")
        chunks: list[bytes] = []
        total = 0
        while total <= max_bytes:
            block = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not block:
                break
            chunks.append(block)
            total += len(block)
    except OSError as exc:
        raise TransientReadError(f"cannot read: {exc.strerror}") from exc
    finally:
        os.close(fd)
    if total > max_bytes:
        raise TransientReadError(f"larger than {size_label(max_bytes)}")
    return RawFile(b"".join(chunks), total, st.st_mtime)


def _opened_as(fd: int, expected: Path) -> bool:
    """Whether the open file really is ``expected`` (catches a parent folder swapped for a
    symlink after the scan). Linux only; elsewhere O_NOFOLLOW and fstat are the guard."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}") == str(expected)
    except OSError:
        return True


@contextmanager
def _quiet() -> Iterator[None]:
    """Keep parser libraries' warnings and log records off the user's terminal."""
    logger = logging.getLogger("pypdf")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _parser(path: str) -> Callable[[str, bytes, int], Document]:
    suffix = PurePosixPath(path).suffix.lower()
    parser = PARSERS.get(suffix)
    if parser is None:
        raise ReadError(f"unsupported file type {display_name(suffix) or '(none)'}")
    return parser


def parse_document(path: str, data: bytes, max_bytes: int) -> Document:
    """Parse the bytes of the file at corpus path ``path`` with the parser of its suffix."""
    parser = _parser(path)
    if path.lower().endswith(TEXT_SUFFIXES) and not data.strip():
        raise ReadError("empty file")
    with _quiet():
        return parser(path, data, max_bytes)


def read_document(entry: FileEntry, max_bytes: int) -> Document:
    """Read and parse one file in this process; raises ReadError with a one-line reason on any
    problem. (A build reads through ``isolation`` instead, under a time limit.)"""
    _parser(entry.path)  # an unsupported type is refused before the file is opened
    return parse_document(entry.path, read_bytes(entry, max_bytes).data, max_bytes)
