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
from askdoc.ingest.html import TextBuilder, walk_html
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


def _parse_html(path: str, data: bytes, max_bytes: int) -> Document:
    from bs4 import BeautifulSoup
    from bs4.exceptions import ParserRejectedMarkup

    raw, notes = _decode(data, _declared_charset(data))
    out = TextBuilder()
    headings: list[Heading] = []
    try:
        soup = BeautifulSoup(raw, "html.parser")
        title = walk_html(soup, out, headings)
    except MALFORMED + (ParserRejectedMarkup,) as exc:
        raise ReadError(f"cannot parse HTML: {describe_error(exc)}") from exc
    text = out.text()
    if not text.replace(title, "", 1).strip():
        raise ReadError("no text in HTML")
    return Document(path, text, "html", headings=tuple(headings), notes=notes)


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
