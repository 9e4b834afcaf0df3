"""One parser per format (txt, md, html, pdf, docx): bytes of one file -> Document.

Parsers never touch the file system: ``readers`` opens the file safely and hands them its bytes.
Every problem becomes a ReadError with a one-line reason. In a build they run inside the
isolated reader process (``isolation``), under a time and memory limit.
"""

from __future__ import annotations

import functools
import re
import struct
import zipfile
import zlib
from collections.abc import Callable
from io import BytesIO
from typing import TYPE_CHECKING, Any

from askdoc.errors import ReadError
from askdoc.text import clean_text, describe_error
from askdoc.types import Document, Heading

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

PDF_TEXT_CAP = 50_000_000
"""Most characters of text a PDF or .docx may expand to (a compression bomb stops here)."""

_SPACE_RE = re.compile(r"\s+")
_NOT_TEXT_RE = re.compile("[\x00-\x07\x0e-\x1a\x1c-\x1f\x7f-\x9f\ufffd]")
"""Characters text almost never holds: C0 controls (not tab, line ends, form feed, backspace
or ESC, which logs and man pages use), DEL, C1 controls, U+FFFD. Random bytes decoded as latin-1
are ~24% of them, as cp1252 ~11%; text in any encoding askdoc decodes, well under 1%."""
NOT_TEXT_SHARE = 0.05
"""A decoded file with more than this share of ``_NOT_TEXT_RE`` characters is binary."""
NOT_TEXT_MIN = 16
"""...and at least this many of them (a short text with one stray control byte is still text)."""
MALFORMED: tuple[type[Exception], ...] = (
    ValueError,  # bad values, UnicodeError, binascii.Error
    LookupError,  # KeyError, IndexError: a reference to an object or entry that is not there
    TypeError,  # an object of another kind than the format says
    AttributeError,  # idem, met by a library walking the structure
    AssertionError,  # a library's own consistency checks
    ArithmeticError,  # sizes and offsets that overflow or divide by zero
    EOFError,
    NotImplementedError,  # a feature the library does not read (a filter, a cipher)
    struct.error,  # truncated binary fields
    zlib.error,  # damaged compressed streams
    zipfile.BadZipFile,
)
"""What the parser libraries raise, besides their own error classes, on a malformed file:
each becomes a ReadError naming it. Anything else (a bug, a RecursionError, a MemoryError) is
left to the reader process, which skips the file as unexpected."""


def _declared_charset(data: bytes) -> str | None:
    match = re.search(rb"""charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", data[:4096], re.IGNORECASE)
    return match.group(1).decode("ascii") if match else None


def _decode(data: bytes, declared: str | None = None) -> tuple[str, tuple[str, ...]]:
    """Decode text bytes: UTF-16 (BOM), UTF-8 (BOM stripped), declared charset, cp1252, latin-1;
    ReadError when the result is not text (``check_text``)."""
    text, notes = _decode_bytes(data, declared)
    check_text(text)
    return text, notes


def check_text(text: str) -> None:
    """ReadError "binary file (...)" when too many characters of ``text`` are ones text never
    holds: bytes without NUL (compressed, encrypted, images) decode as latin-1 without error."""
    odd = len(text) - len(_NOT_TEXT_RE.sub("", text))
    if odd >= NOT_TEXT_MIN and odd > NOT_TEXT_SHARE * len(text):
        share = 100 * odd / len(text)
        raise ReadError(f"binary file ({share:.0f}% control characters: not text)")


def _decode_bytes(data: bytes, declared: str | None) -> tuple[str, tuple[str, ...]]:
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


def _parse_md(path: str, data: bytes, max_bytes: int) -> Document:
    text, notes = _text_of(data)
    return Document(path, text, "md", headings=markdown_headings(text), notes=notes)


def markdown_headings(text: str) -> tuple[Heading, ...]:
    """ATX and setext headings as CommonMark reads them (markdown-it-py, block rules only: code
    blocks, HTML blocks, lists and lazy lines as any Markdown renderer sees them), skipping YAML
    front matter. Each heading's offset is the start of its first line; a setext heading's title
    is its lines joined by spaces."""
    lines = text.split("\n")
    front = _front_matter_lines(lines)
    tokens = _markdown_blocks().parse("\n" * front + "\n".join(lines[front:]))
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    headings: list[Heading] = []
    for opening, inline in zip(tokens, tokens[1:], strict=False):
        if opening.type != "heading_open" or opening.map is None:
            continue
        title = " ".join(part.strip() for part in inline.content.split("\n")).strip()
        if title:
            headings.append(Heading(starts[opening.map[0]], int(opening.tag[1:]), title))
    return tuple(headings)


def _front_matter_lines(lines: list[str]) -> int:
    """How many lines YAML front matter takes: a first line ``---`` up to its closing ``---``
    or ``...`` (0 without one; an unclosed block is not front matter)."""
    if not lines or lines[0].strip() != "---":
        return 0
    for number, line in enumerate(lines[1:], 1):
        if line.strip() in ("---", "..."):
            return number + 1
    return 0


@functools.cache
def _markdown_blocks() -> MarkdownIt:
    """A CommonMark parser that finds blocks only (inline markup is never parsed: 40% faster)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").disable(["inline", "text_join"])


# --- html ------------------------------------------------------------------------------------

_DROP_TAGS = {"script", "style", "noscript", "template", "svg", "iframe", "object", "canvas"}
_PARA_TAGS = {"p", "pre", "blockquote", "table", "ul", "ol", "dl", "section", "article", "aside"}
_PARA_TAGS |= {"header", "footer", "nav", "main", "figure", "form", "fieldset", "hr", "address"}
_LINE_TAGS = {"div", "li", "tr", "dt", "dd", "figcaption", "caption", "details", "summary"}
_LINE_TAGS |= {"option", "legend", "body", "html"}
_HEADING_TAGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}


_WHITESPACE = re.compile(r"\s+")


def _collapse(text: str) -> str:
    """Runs of whitespace as one space, or as the newlines they contain."""
    return _WHITESPACE.sub(lambda m: "\n" * m.group().count("\n") or " ", text)


class _TextBuilder:
    """Accumulates the text of an HTML file so that every character stays on the line of the
    file where it was written: newlines inside text are kept, each tag pads the text down to its
    own line (``at_line``), and a block break (``brk``) is a newline only when the next block
    starts on a later line, else one space. So a citation's line is the file's line, never
    past its end. Offsets are exact (nothing is rewritten afterwards)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.line = 1
        self.floor = 1
        self.pending = False

    def brk(self) -> None:
        """A block ends: the next text must not run into it."""
        self.pending = True

    def at_line(self, line: int | None) -> None:
        """What comes next was written on ``line`` of the file (or later)."""
        if line:
            self.floor = max(self.floor, line)

    def add(self, text: str, pre: bool = False) -> None:
        text = text if pre else _collapse(text)
        if not text.strip() and not pre:
            self.line_feeds(text.count("\n"))
            if text and not text.count("\n") and not self._ends_blank():
                self.pending = True
            return
        if not text:
            return
        if self.floor > self.line:
            self.line_feeds(self.floor - self.line)
        if self._at_line_start():
            text = text.lstrip(" ")
        elif self.pending and not text[:1].isspace() and not self._ends_blank():
            self._emit(" ")
        elif self._ends_blank():
            text = text.lstrip(" ")
        self.pending = False
        self._emit(text)

    def line_feeds(self, count: int) -> None:
        if count <= 0:
            return
        if self.parts:
            last = self.parts[-1]
            trimmed = last.rstrip(" ")
            self.length -= len(last) - len(trimmed)
            self.parts[-1] = trimmed
        self._emit("\n" * count)
        self.pending = False

    def _at_line_start(self) -> bool:
        return not self.parts or self.parts[-1].endswith("\n")

    def _ends_blank(self) -> bool:
        return not self.parts or self.parts[-1][-1:] in (" ", "\n")

    def _emit(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)
        self.line += text.count("\n")
        self.floor = max(self.floor, self.line)

    def text(self) -> str:
        return "".join(self.parts).rstrip()


def _parse_html(path: str, data: bytes, max_bytes: int) -> Document:
    from bs4 import BeautifulSoup
    from bs4.exceptions import ParserRejectedMarkup

    raw, notes = _decode(data, _declared_charset(data))
    out = _TextBuilder()
    headings: list[Heading] = []
    try:
        soup = BeautifulSoup(raw, "html.parser")
        title = _walk_html(soup, out, headings)
    except MALFORMED + (ParserRejectedMarkup,) as exc:
        raise ReadError(f"cannot parse HTML: {describe_error(exc)}") from exc
    text = out.text()
    if not text.replace(title, "", 1).strip():
        raise ReadError("no text in HTML")
    return Document(path, text, "html", headings=tuple(headings), notes=notes)


def _walk_html(soup: Any, out: _TextBuilder, headings: list[Heading]) -> str:
    """Iterative walk (deep nesting cannot overflow the stack) emitting text and headings, in
    the file's order; returns the title (the first <title>, a level-1 heading)."""
    from bs4 import CData, NavigableString, Tag
    from bs4.element import PreformattedString

    stack: list[tuple[Any, bool]] = [(soup, False)]
    opened: list[tuple[int, int]] = []  # (index in out.parts, level) of headings being read
    pre_depth = 0
    title = ""
    while stack:
        node, leaving = stack.pop()
        if isinstance(node, NavigableString):
            if not isinstance(node, PreformattedString) or isinstance(node, CData):
                out.add(clean_text(str(node)), pre=pre_depth > 0)
            continue
        name = node.name.lower() if isinstance(node, Tag) and node.name else ""
        if name in _DROP_TAGS:
            continue
        if name == "title":
            text = _SPACE_RE.sub(" ", clean_text(node.get_text())).strip()
            if text and not title and not leaving:
                out.at_line(node.sourceline)
                out.add(text)
                headings.append(Heading(out.length - len(text), 1, text))
                out.brk()
                title = text
            continue
        if not leaving and isinstance(node, Tag):
            out.at_line(node.sourceline)
        if name == "br":
            out.brk()
            continue
        if name in _PARA_TAGS or name in _HEADING_TAGS or name in _LINE_TAGS:
            out.brk()
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
    return title


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
    from pypdf.errors import PyPdfError

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
    except MALFORMED + (PyPdfError,) as exc:
        raise ReadError(f"cannot parse PDF: {describe_error(exc)}") from exc
    text = "\n\n".join(pages)
    if not text.strip():
        raise ReadError("no extractable text in PDF (scanned?)")
    return Document(path, text, "pdf", page_starts=tuple(starts))


def _open_with_empty_password(reader: Any) -> bool:
    """Many PDFs are encrypted only to restrict printing: their user password is empty. A
    cipher pypdf cannot undo (AES without a crypto library: DependencyError) counts as locked."""
    from pypdf.errors import DependencyError, PyPdfError

    try:
        return bool(reader.decrypt(""))
    except MALFORMED + (DependencyError, PyPdfError):
        return False


# --- docx ------------------------------------------------------------------------------------

_HEADING_STYLE_RE = re.compile(r"heading ([1-9])\b", re.IGNORECASE)


def _parse_docx(path: str, data: bytes, max_bytes: int) -> Document:
    import docx
    from docx.exceptions import PythonDocxError
    from docx.opc.exceptions import OpcError
    from lxml.etree import LxmlError

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
    except MALFORMED + (PythonDocxError, OpcError, LxmlError) as exc:
        raise ReadError(f"cannot parse .docx: {describe_error(exc)}") from exc
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


PARSERS: dict[str, Callable[[str, bytes, int], Document]] = {
    ".txt": _parse_txt,
    ".md": _parse_md,
    ".markdown": _parse_md,
    ".html": _parse_html,
    ".htm": _parse_html,
    ".pdf": _parse_pdf,
    ".docx": _parse_docx,
}
