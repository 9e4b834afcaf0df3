"""Safe file reading inside the corpus, and one parser per format (txt, md, html, pdf, docx)."""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
import warnings
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path, PurePosixPath
from typing import Any

from askdoc.errors import CorpusError, ReadError
from askdoc.types import Document, Heading

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")
TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm")
PDF_TEXT_CAP = 50_000_000

_CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]+")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_SPACE_RE = re.compile(r"\s+")


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


def clean_text(text: str) -> str:
    """Normalise line ends to ``\\n``, then drop C0 (except ``\\n``/``\\t``), DEL, C1 and bidi
    override/embedding/isolate characters; lone surrogates become U+FFFD."""
    text = _CONTROL_RE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _SURROGATE_RE.sub("\ufffd", text)


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


def _one_line(exc: BaseException, limit: int = 150) -> str:
    """A short one-line description of an exception, safe to show in a terminal."""
    msg = _SPACE_RE.sub(" ", clean_text(str(exc))).strip()
    msg = f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."


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


def _read_bytes(entry: FileEntry, max_bytes: int) -> bytes:
    """Read at most ``max_bytes`` of a regular file without following a final symlink."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(entry.abspath, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ReadError("file was replaced by a symlink") from exc
        raise ReadError(f"cannot open: {exc.strerror}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ReadError(f"not a regular file ({_kind(st.st_mode)})")
        if not _opened_as(fd, entry.abspath):
            raise ReadError("file was moved or replaced after the scan")
        if st.st_size > max_bytes:
            raise ReadError(f"larger than {size_label(max_bytes)}")
        chunks: list[bytes] = []
        total = 0
        while total <= max_bytes:
            block = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not block:
                break
            chunks.append(block)
            total += len(block)
    except OSError as exc:
        raise ReadError(f"cannot read: {exc.strerror}") from exc
    finally:
        os.close(fd)
    if total > max_bytes:
        raise ReadError(f"larger than {size_label(max_bytes)}")
    return b"".join(chunks)


def _opened_as(fd: int, expected: Path) -> bool:
    """Whether the open file really is ``expected`` (catches a parent folder swapped for a
    symlink after the scan). Linux only; elsewhere O_NOFOLLOW and fstat are the guard."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}") == str(expected)
    except OSError:
        return True


def _declared_charset(data: bytes) -> str | None:
    match = re.search(rb"""charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", data[:4096], re.IGNORECASE)
    return match.group(1).decode("ascii") if match else None


def _decode(data: bytes, declared: str | None = None) -> tuple[str, tuple[str, ...]]:
    """Decode text bytes: UTF-16 (BOM), UTF-8 (BOM stripped), declared charset, cp1252, latin-1."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), ("decoded as UTF-16",)
        except UnicodeDecodeError as exc:
            raise ReadError("invalid UTF-16 text") from exc
    if b"\x00" in data[:8192]:
        raise ReadError("binary file (NUL bytes)")
    try:
        return data.decode("utf-8-sig"), ()
    except UnicodeDecodeError:
        pass
    for encoding in (declared, "cp1252", "latin-1"):
        if not encoding:
            continue
        try:
            return data.decode(encoding), (f"not UTF-8; decoded as {encoding}",)
        except (UnicodeDecodeError, LookupError):
            continue
    raise AssertionError("latin-1 decodes any bytes")  # pragma: no cover


@contextmanager
def _quiet() -> Iterator[None]:
    """Keep parser libraries' warnings and log records off the user's terminal."""
    logger = logging.getLogger("pypdf")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def read_document(entry: FileEntry, max_bytes: int) -> Document:
    """Read and parse one file; raises ReadError with a one-line reason on any problem."""
    suffix = PurePosixPath(entry.path).suffix.lower()
    parser = _PARSERS.get(suffix)
    if parser is None:
        raise ReadError(f"unsupported file type {display_name(suffix) or '(none)'}")
    data = _read_bytes(entry, max_bytes)
    if suffix in TEXT_SUFFIXES and not data.strip():
        raise ReadError("empty file")
    with _quiet():
        return parser(entry.path, data, max_bytes)


def _text_of(data: bytes) -> tuple[str, tuple[str, ...]]:
    raw, notes = _decode(data)
    text = clean_text(raw)
    if not text.strip():
        raise ReadError("empty file")
    return text, notes


def _parse_txt(path: str, data: bytes, max_bytes: int) -> Document:
    text, notes = _text_of(data)
    return Document(path=path, text=text, kind="txt", notes=notes)


# --- markdown --------------------------------------------------------------------------------

_ATX_RE = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))??(?:[ \t]+#+)?[ \t]*$")
_FENCE_RE = re.compile(r" {0,3}(`{3,}|~{3,})")
_SETEXT_RE = re.compile(r" {0,3}(=+|-+)[ \t]*$")
_NOT_PARAGRAPH_RE = re.compile(r"( {4}|\t| {0,3}([>#|]|[-*+][ \t]|\d{1,9}[.)][ \t]|`{3}|~{3}))")


def _parse_md(path: str, data: bytes, max_bytes: int) -> Document:
    text, notes = _text_of(data)
    return Document(path, text, "md", headings=markdown_headings(text), notes=notes)


def markdown_headings(text: str) -> tuple[Heading, ...]:
    """ATX and setext headings outside fenced code blocks and YAML front matter."""
    headings: list[Heading] = []
    fence = ""
    para: tuple[int, str] | None = None  # (offset, text) of a paragraph a setext line may underline
    lines = text.split("\n")
    front = lines[0].strip() == "---" and any(x.strip() in ("---", "...") for x in lines[1:])
    offset = 0
    for number, line in enumerate(lines):
        start, offset = offset, offset + len(line) + 1
        if front:  # YAML front matter: skip up to its closing line
            front = number == 0 or line.strip() not in ("---", "...")
            continue
        fence_match = _FENCE_RE.match(line)
        atx = None if fence or fence_match else _ATX_RE.match(line)
        setext = None if fence or para is None else _SETEXT_RE.match(line)
        if fence:
            char = fence[0]
            if fence_match and fence_match[1][0] == char and len(fence_match[1]) >= len(fence):
                fence = fence if line.strip().strip(char) else ""
        elif fence_match:
            fence = fence_match[1]
        elif atx and atx[2] and atx[2].strip():
            headings.append(Heading(start, len(atx[1]), atx[2].strip()))
        elif setext and para:
            headings.append(Heading(para[0], 1 if setext[1][0] == "=" else 2, para[1]))
        if fence or fence_match or atx or setext or not line.strip():
            para = None
        elif para is not None:
            para = (para[0], f"{para[1]} {line.strip()}")
        elif not _NOT_PARAGRAPH_RE.match(line):
            para = (start, line.strip())
    return tuple(headings)


# --- html ------------------------------------------------------------------------------------

_DROP_TAGS = {"script", "style", "noscript", "template", "svg", "iframe", "object", "canvas"}
_PARA_TAGS = {"p", "pre", "blockquote", "table", "ul", "ol", "dl", "section", "article", "aside"}
_PARA_TAGS |= {"header", "footer", "nav", "main", "figure", "form", "fieldset", "hr", "address"}
_LINE_TAGS = {"div", "li", "tr", "dt", "dd", "figcaption", "caption", "details", "summary"}
_LINE_TAGS |= {"option", "legend", "body", "html"}
_HEADING_TAGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}


class _TextBuilder:
    """Accumulates extracted text and block breaks; offsets are exact (nothing is rewritten)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.pending = 0

    def brk(self, count: int, add: bool = False) -> None:
        """Ask for ``count`` newlines before the next text (``add``: on top of those asked)."""
        self.pending = min(2, self.pending + count if add else max(self.pending, count))

    def add(self, text: str, pre: bool = False) -> None:
        last = self.parts[-1] if self.parts else "\n"
        if pre:
            text = re.sub(r"\n{3,}", "\n\n", text.lstrip("\n") if self.pending else text)
        else:
            text = _SPACE_RE.sub(" ", text)
            if self.pending or last.endswith("\n") or last.endswith(" "):
                text = text.lstrip(" ")
        if not text:
            return
        if self.pending and self.parts:
            trimmed = last.rstrip(" ")
            self.length -= len(last) - len(trimmed)
            self.parts[-1] = trimmed
            self._emit("\n" * max(0, self.pending - (len(trimmed) - len(trimmed.rstrip("\n")))))
        self.pending = 0
        self._emit(text)

    def _emit(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)

    def text(self) -> str:
        return "".join(self.parts).rstrip()


def _parse_html(path: str, data: bytes, max_bytes: int) -> Document:
    from bs4 import BeautifulSoup

    raw, notes = _decode(data, _declared_charset(data))
    out = _TextBuilder()
    headings: list[Heading] = []
    try:
        soup = BeautifulSoup(raw, "html.parser")
        title_tag = soup.find("title")
        title = _SPACE_RE.sub(" ", clean_text(title_tag.get_text())).strip() if title_tag else ""
        if title:
            headings.append(Heading(0, 1, title))
            out.add(title)
            out.brk(2)
        body_start = out.length
        _walk_html(soup, out, headings)
    except Exception as exc:
        raise ReadError(f"cannot parse HTML: {_one_line(exc)}") from exc
    text = out.text()
    if len(text) <= body_start:
        raise ReadError("no text in HTML")
    return Document(path, text, "html", headings=tuple(headings), notes=notes)


def _walk_html(soup: Any, out: _TextBuilder, headings: list[Heading]) -> None:
    """Iterative walk (deep nesting cannot overflow the stack) emitting text and headings."""
    from bs4 import CData, NavigableString, Tag
    from bs4.element import PreformattedString

    stack: list[tuple[Any, bool]] = [(soup, False)]
    opened: list[tuple[int, int]] = []  # (index in out.parts, level) of headings being read
    pre_depth = 0
    while stack:
        node, leaving = stack.pop()
        if isinstance(node, NavigableString):
            if not isinstance(node, PreformattedString) or isinstance(node, CData):
                out.add(clean_text(str(node)), pre=pre_depth > 0)
            continue
        name = node.name.lower() if isinstance(node, Tag) and node.name else ""
        if name in _DROP_TAGS or name == "title":
            continue
        if name == "br":
            out.brk(1, add=True)
            continue
        out.brk(2 if name in _PARA_TAGS or name in _HEADING_TAGS else int(name in _LINE_TAGS))
        if name in ("td", "th") and not leaving:
            out.add(" ")
        if name == "pre":
            pre_depth += -1 if leaving else 1
        if name in _HEADING_TAGS and not leaving:
            opened.append((len(out.parts), _HEADING_TAGS[name]))
        elif name in _HEADING_TAGS and opened:
            _close_heading(opened.pop(), out, headings)
        if not leaving:
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.contents))


def _close_heading(opened: tuple[int, int], out: _TextBuilder, headings: list[Heading]) -> None:
    """Record a heading whose text is everything emitted since its tag opened."""
    emitted = "".join(out.parts[opened[0] :])
    title = _SPACE_RE.sub(" ", emitted).strip()
    if title:
        lead = len(emitted) - len(emitted.lstrip())
        headings.append(Heading(out.length - len(emitted) + lead, opened[1], title))


# --- pdf -------------------------------------------------------------------------------------


def _parse_pdf(path: str, data: bytes, max_bytes: int) -> Document:
    from pypdf import PdfReader

    cap = min(20 * max_bytes, PDF_TEXT_CAP)
    pages: list[str] = []
    starts: list[int] = []
    total = 0
    try:
        reader = PdfReader(BytesIO(data))
        if reader.is_encrypted and not _open_with_empty_password(reader):
            raise ReadError("PDF is encrypted")
        for page in reader.pages:
            page_text = clean_text(page.extract_text() or "").strip()
            starts.append(total + 2 * len(pages))
            pages.append(page_text)
            total += len(page_text)
            if total > cap:
                raise ReadError("PDF expands beyond the size cap")
    except ReadError:
        raise
    except Exception as exc:
        raise ReadError(f"cannot parse PDF: {_one_line(exc)}") from exc
    text = "\n\n".join(pages)
    if not text.strip():
        raise ReadError("no extractable text in PDF (scanned?)")
    return Document(path, text, "pdf", page_starts=tuple(starts))


def _open_with_empty_password(reader: Any) -> bool:
    """Many PDFs are encrypted only to restrict printing: their user password is empty."""
    try:
        return bool(reader.decrypt(""))
    except Exception:  # e.g. AES without a crypto library: treat as locked
        return False


# --- docx ------------------------------------------------------------------------------------

_HEADING_STYLE_RE = re.compile(r"heading ([1-9])\b", re.IGNORECASE)


def _parse_docx(path: str, data: bytes, max_bytes: int) -> Document:
    import docx

    try:
        with zipfile.ZipFile(BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
        if unpacked > min(20 * max_bytes, PDF_TEXT_CAP):
            raise ReadError(".docx expands beyond the size cap")
        document = docx.Document(BytesIO(data))
        lines: list[str] = []
        headings: list[Heading] = []
        offset = 0
        for paragraph in document.paragraphs:
            line = clean_text(paragraph.text).replace("\n", " ")
            level = _docx_heading_level(paragraph)
            if level and line.strip():
                headings.append(Heading(offset, level, line.strip()))
            lines.append(line)
            offset += len(line) + 1
        lines.extend(_docx_table_lines(document))
    except ReadError:
        raise
    except Exception as exc:
        raise ReadError(f"cannot parse .docx: {_one_line(exc)}") from exc
    text = "\n".join(lines)
    if not text.strip():
        raise ReadError("no text in .docx")
    return Document(path, text, "docx", headings=tuple(headings))


def _docx_heading_level(paragraph: Any) -> int:
    name = (paragraph.style.name if paragraph.style is not None else "") or ""
    if name.strip().lower() == "title":
        return 1
    match = _HEADING_STYLE_RE.match(name.strip())
    return int(match[1]) if match else 0


def _docx_table_lines(document: Any) -> list[str]:
    """One line per table row (cells joined by `` | ``), after the paragraphs."""
    lines: list[str] = []
    for table in document.tables:
        lines.append("")
        for row in table.rows:
            cells: list[str] = []
            for cell in row.cells:
                cell_text = _SPACE_RE.sub(" ", clean_text(cell.text)).strip()
                if cell_text and (not cells or cells[-1] != cell_text):  # merged cells repeat
                    cells.append(cell_text)
            if cells:
                lines.append(" | ".join(cells))
    return lines


_PARSERS: dict[str, Callable[[str, bytes, int], Document]] = {
    ".txt": _parse_txt,
    ".md": _parse_md,
    ".markdown": _parse_md,
    ".html": _parse_html,
    ".htm": _parse_html,
    ".pdf": _parse_pdf,
    ".docx": _parse_docx,
}
