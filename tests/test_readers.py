"""Tests for askdoc.ingest.readers and parsers: corpus scanning, safe reading, every parser."""

from __future__ import annotations

import os
import random
import sys
import time
import zipfile
from io import BytesIO
from pathlib import Path

import pytest

from askdoc.errors import CorpusError, ReadError
from askdoc.ingest.parsers import markdown_headings
from askdoc.ingest.readers import (
    SUPPORTED_SUFFIXES,
    FileEntry,
    Skipped,
    display_name,
    read_document,
    scan_corpus,
)
from askdoc.text import clean_text
from askdoc.types import Document

MB = 1 << 20
CAP = 5 * MB

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file types")


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    return root


def write(root: Path, name: str, data: bytes | str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_bytes(data.encode("utf-8"))
    else:
        path.write_bytes(data)
    return path


def entry_of(root: Path, rel: str, max_bytes: int = CAP) -> FileEntry:
    entries, skipped = scan_corpus(root, max_bytes)
    matches = [e for e in entries if e.path == rel]
    assert matches, f"{rel} not scanned; skipped={skipped}"
    return matches[0]


def read(root: Path, name: str, data: bytes | str, max_bytes: int = CAP) -> Document:
    write(root, name, data)
    return read_document(entry_of(root, name, max_bytes), max_bytes)


def read_error(root: Path, name: str, data: bytes | str, max_bytes: int = CAP) -> str:
    with pytest.raises(ReadError) as info:
        read(root, name, data, max_bytes)
    return one_line(info.value)


def one_line(exc: BaseException) -> str:
    message = str(exc)
    assert "\n" not in message and "\r" not in message
    assert 0 < len(message) < 200
    return message


def reasons(skipped: list[Skipped]) -> dict[str, str]:
    return {s.path: s.reason for s in skipped}


def make_pdf(pages: list[str]) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(w=0, text=text)
    return bytes(pdf.output())


def encrypt_pdf(data: bytes, user_password: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password="owner")
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def make_docx() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Report Title", 0)
    document.add_heading("Introduction", 1)
    document.add_paragraph("The first paragraph.")
    document.add_paragraph("")
    document.add_heading("Details", 2)
    document.add_paragraph("Second\u202e paragraph.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "name"
    table.cell(0, 1).text = "value"
    table.cell(1, 0).text = "alpha"
    table.cell(1, 1).text = "42"
    out = BytesIO()
    document.save(out)
    return out.getvalue()


# --- clean_text and display_name -------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("plain text", "plain text"),
        ("", ""),
        ("tab\tand\nnewline", "tab\tand\nnewline"),
        ("a\r\nb\r\nc", "a\nb\nc"),
        ("a\rb\rc", "a\nb\nc"),
        ("\x1b[31mred\x1b[0m", "[31mred[0m"),
        ("\x1b]8;;http://x\x07link\x1b]8;;\x07", "]8;;http://xlink]8;;"),
        ("csi\x9b31m", "csi31m"),
        ("del\x7fete", "delete"),
        ("nul\x00bell\x07bs\x08vt\x0bff\x0c", "nulbellbsvtff"),
        ("c1\x80\x85\x9f", "c1"),
        ("evil\u202etxt.exe", "eviltxt.exe"),
        ("\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069ok", "ok"),
        ("é漢字 — “quotes” \u00a0 emoji 🙂", "é漢字 — “quotes” \u00a0 emoji 🙂"),
        ("lone \ud800 surrogate", "lone \ufffd surrogate"),
    ],
)
def test_clean_text(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


def test_clean_text_keeps_line_numbers() -> None:
    raw = "one\r\ntwo\x1b[1m\r\n\x9bthree\rfour\n\u202efive"
    cleaned = clean_text(raw)
    assert cleaned.split("\n") == ["one", "two[1m", "three", "four", "five"]


def test_clean_text_is_fast_on_large_input() -> None:
    text = ("Some ordinary words.\r\n" * 200_000) + "\x1b"
    start = time.perf_counter()
    cleaned = clean_text(text)
    assert time.perf_counter() - start < 1.0
    assert "\r" not in cleaned and "\x1b" not in cleaned


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("notes/plain.md", "notes/plain.md"),
        ("été/日本.txt", "été/日本.txt"),
        ("line\nbreak.txt", "line\\nbreak.txt"),
        ("tab\there.txt", "tab\\there.txt"),
        ("esc\x1b[31m.txt", "esc\\x1b[31m.txt"),
        ("rtl\u202etxt.md", "rtl\\u202etxt.md"),
        ("bad\udcffbyte.txt", "bad\\xffbyte.txt"),
        ("back\\slash.txt", "back\\\\slash.txt"),
    ],
)
def test_display_name(name: str, expected: str) -> None:
    assert display_name(name) == expected
    assert display_name(name).isprintable()


# --- scanning --------------------------------------------------------------------------------


def test_scan_finds_supported_files_sorted(corpus: Path) -> None:
    for name in ("b.txt", "a.md", "sub/c.HTML", "sub/deeper/d.pdf", "e.docx", "f.markdown"):
        write(corpus, name, "x")
    write(corpus, "ignored.py", "x")
    write(corpus, "noext", "x")
    write(corpus, ".hidden.txt", "x")
    write(corpus, ".git/config.txt", "x")
    entries, skipped = scan_corpus(corpus, CAP)
    assert [e.path for e in entries] == [
        "a.md",
        "b.txt",
        "e.docx",
        "f.markdown",
        "sub/c.HTML",
        "sub/deeper/d.pdf",
    ]
    assert skipped == []
    assert entries[0].abspath == (corpus / "a.md").resolve()
    assert entries[0].size == 1 and entries[0].mtime > 0


def test_scan_missing_or_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(CorpusError):
        scan_corpus(tmp_path / "missing", CAP)
    write(tmp_path, "file.txt", "x")
    with pytest.raises(CorpusError):
        scan_corpus(tmp_path / "file.txt", CAP)


def test_scan_through_symlinked_root(tmp_path: Path, corpus: Path) -> None:
    write(corpus, "a.txt", "hello")
    link = tmp_path / "link"
    link.symlink_to(corpus, target_is_directory=True)
    entries, skipped = scan_corpus(link, CAP)
    assert [e.path for e in entries] == ["a.txt"] and skipped == []


@posix_only
def test_scan_symlink_to_file_outside(tmp_path: Path, corpus: Path) -> None:
    secret = write(tmp_path, "secret.txt", "password")
    (corpus / "leak.txt").symlink_to(secret)
    (corpus / "passwd.md").symlink_to("/etc/passwd")
    entries, skipped = scan_corpus(corpus, CAP)
    assert entries == []
    assert reasons(skipped) == {
        "leak.txt": "symlink leaves the corpus",
        "passwd.md": "symlink leaves the corpus",
    }


@posix_only
def test_scan_symlink_inside_is_kept_once(corpus: Path) -> None:
    write(corpus, "docs/real.md", "# Real")
    (corpus / "alias.md").symlink_to(corpus / "docs" / "real.md")
    write(corpus, "notes.txt", "plain")
    (corpus / "notes_link.txt").symlink_to("notes.txt")
    entries, skipped = scan_corpus(corpus, CAP)
    assert [e.path for e in entries] == ["docs/real.md", "notes.txt"]
    assert reasons(skipped) == {
        "alias.md": "same file as docs/real.md",
        "notes_link.txt": "same file as notes.txt",
    }


@posix_only
def test_scan_dangling_symlink_and_loop(corpus: Path) -> None:
    (corpus / "dangling.txt").symlink_to(corpus / "nowhere.txt")
    (corpus / "a.md").symlink_to("b.md")
    (corpus / "b.md").symlink_to("a.md")
    (corpus / "self.txt").symlink_to("self.txt")
    (corpus / "unsupported_dangling").symlink_to("nowhere")
    entries, skipped = scan_corpus(corpus, CAP)
    assert entries == []
    assert reasons(skipped) == {
        "a.md": "symlink loop",
        "b.md": "symlink loop",
        "dangling.txt": "dangling symlink",
        "self.txt": "symlink loop",
    }


@posix_only
def test_scan_directory_symlinks(tmp_path: Path, corpus: Path) -> None:
    write(tmp_path, "outside/secret.txt", "secret")
    (corpus / "escape").symlink_to(tmp_path / "outside", target_is_directory=True)
    write(corpus, "sub/inner.txt", "inner")
    (corpus / "sub" / "loop").symlink_to("..", target_is_directory=True)
    (corpus / "sub" / "self").symlink_to(".", target_is_directory=True)
    (corpus / "twin").symlink_to("sub", target_is_directory=True)
    entries, skipped = scan_corpus(corpus, CAP)
    assert [e.path for e in entries] == ["sub/inner.txt"]
    assert reasons(skipped) == {"escape": "symlink leaves the corpus"}


@posix_only
@pytest.mark.timeout(10)
def test_scan_fifo_does_not_block(corpus: Path) -> None:
    os.mkfifo(corpus / "pipe.txt")
    os.mkfifo(corpus / "pipe_unsupported")
    write(corpus, "ok.txt", "fine")
    entries, skipped = scan_corpus(corpus, CAP)
    assert [e.path for e in entries] == ["ok.txt"]
    assert reasons(skipped) == {"pipe.txt": "not a regular file (FIFO)"}


@posix_only
@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_scan_symlink_to_dev_zero(corpus: Path) -> None:
    (corpus / "zero.txt").symlink_to("/dev/zero")
    entries, skipped = scan_corpus(corpus, CAP)
    assert entries == []
    assert reasons(skipped) == {"zero.txt": "symlink leaves the corpus"}


@posix_only
def test_scan_socket_is_skipped(tmp_path: Path) -> None:
    import socket

    root = Path(os.path.realpath("/tmp")) / f"askdoc-sock-{os.getpid()}"  # short AF_UNIX path
    root.mkdir()
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(root / "s.md"))
        entries, skipped = scan_corpus(root, CAP)
        assert entries == [] and reasons(skipped) == {"s.md": "not a regular file (socket)"}
    finally:
        server.close()
        (root / "s.md").unlink()
        root.rmdir()


def test_scan_skips_huge_file_without_reading(corpus: Path) -> None:
    with open(corpus / "huge.txt", "wb") as handle:
        handle.truncate(10 * 1024 * MB)  # sparse: 10 GiB, never written
    write(corpus, "small.txt", "small")
    start = time.perf_counter()
    entries, skipped = scan_corpus(corpus, 50 * MB)
    assert time.perf_counter() - start < 1.0
    assert [e.path for e in entries] == ["small.txt"]
    assert reasons(skipped) == {"huge.txt": "larger than 50 MB"}


def test_scan_size_cap_is_exclusive(corpus: Path) -> None:
    write(corpus, "exact.txt", b"a" * 100)
    write(corpus, "over.txt", b"a" * 101)
    entries, skipped = scan_corpus(corpus, 100)
    assert [e.path for e in entries] == ["exact.txt"]
    assert reasons(skipped) == {"over.txt": "larger than 100 bytes"}


@posix_only
def test_scan_names_with_newlines_are_printable(corpus: Path) -> None:
    write(corpus, "two\nlines.txt", "content")
    (corpus / "bad\nlink.txt").symlink_to("/nonexistent/x")
    entries, skipped = scan_corpus(corpus, CAP)
    assert [e.path for e in entries] == ["two\\nlines.txt"]
    assert reasons(skipped) == {"bad\\nlink.txt": "dangling symlink"}
    document = read_document(entries[0], CAP)
    assert document.path == "two\\nlines.txt" and document.text == "content"


@posix_only
@pytest.mark.skipif(sys.platform == "darwin", reason="macOS rejects non-UTF-8 names")
def test_scan_non_utf8_name(corpus: Path) -> None:
    with open(os.path.join(os.fsencode(corpus), b"caf\xe9.txt"), "wb") as handle:
        handle.write(b"coffee")
    entries, _ = scan_corpus(corpus, CAP)
    assert [e.path for e in entries] == ["caf\\xe9.txt"]
    assert read_document(entries[0], CAP).text == "coffee"


@posix_only
@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permissions")
def test_scan_unreadable_subfolder(corpus: Path) -> None:
    locked = corpus / "locked"
    write(corpus, "locked/x.txt", "x")
    write(corpus, "ok.txt", "ok")
    locked.chmod(0)
    try:
        entries, skipped = scan_corpus(corpus, CAP)
    finally:
        locked.chmod(0o755)
    assert [e.path for e in entries] == ["ok.txt"]
    assert reasons(skipped) == {"locked": "cannot list folder: Permission denied"}


# --- safe reading ----------------------------------------------------------------------------


@posix_only
@pytest.mark.timeout(10)
def test_read_file_replaced_by_fifo_after_scan(corpus: Path) -> None:
    path = write(corpus, "doc.txt", "hello")
    entry = entry_of(corpus, "doc.txt")
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(ReadError, match=r"not a regular file \(FIFO\)"):
        read_document(entry, CAP)


@posix_only
def test_read_file_replaced_by_symlink_after_scan(tmp_path: Path, corpus: Path) -> None:
    secret = write(tmp_path, "secret.txt", "password")
    path = write(corpus, "doc.txt", "hello")
    entry = entry_of(corpus, "doc.txt")
    path.unlink()
    path.symlink_to(secret)
    with pytest.raises(ReadError, match="replaced by a symlink"):
        read_document(entry, CAP)


@posix_only
@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_read_parent_folder_swapped_for_symlink(tmp_path: Path, corpus: Path) -> None:
    write(tmp_path, "outside/doc.txt", "secret")
    write(corpus, "sub/doc.txt", "hello")
    entry = entry_of(corpus, "sub/doc.txt")
    (corpus / "sub").rename(corpus / "old")
    (corpus / "sub").symlink_to(tmp_path / "outside", target_is_directory=True)
    with pytest.raises(ReadError, match="moved or replaced after the scan"):
        read_document(entry, CAP)


def test_read_file_gone_after_scan(corpus: Path) -> None:
    path = write(corpus, "doc.txt", "hello")
    entry = entry_of(corpus, "doc.txt")
    path.unlink()
    with pytest.raises(ReadError, match="cannot open"):
        read_document(entry, CAP)


def test_read_file_grown_after_scan(corpus: Path) -> None:
    path = write(corpus, "doc.txt", "hello")
    entry = entry_of(corpus, "doc.txt", max_bytes=100)
    path.write_bytes(b"x" * 1000)
    with pytest.raises(ReadError, match="larger than 100 bytes"):
        read_document(entry, 100)


@posix_only
@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_read_device_entry_is_refused(tmp_path: Path) -> None:
    entry = FileEntry("zero.txt", Path("/dev/zero"), 0, 0.0)
    with pytest.raises(ReadError, match=r"not a regular file \(character device\)"):
        read_document(entry, CAP)


def test_read_unsupported_suffix(corpus: Path) -> None:
    path = write(corpus, "x.py", "print()")
    with pytest.raises(ReadError, match="unsupported"):
        read_document(FileEntry("x.py", path, 7, 0.0), CAP)


def test_supported_suffixes() -> None:
    assert SUPPORTED_SUFFIXES == (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")


# --- text and markdown -----------------------------------------------------------------------


def test_read_txt(corpus: Path) -> None:
    document = read(corpus, "notes/a.txt", "\ufeffHello\nworld\n")
    assert document == Document(path="notes/a.txt", text="Hello\nworld\n", kind="txt")


def test_read_txt_control_characters_and_crlf(corpus: Path) -> None:
    raw = "line one\r\n\x1b[31mred\x1b[0m\tcell\r\n\x1b]8;;http://x\x07link\r\n"
    raw += "\x9bc1 \x7fdel\r\n\u202eevil\r\n"
    document = read(corpus, "ctl.txt", raw)
    assert document.text == "line one\n[31mred[0m\tcell\n]8;;http://xlink\nc1 del\nevil\n"
    offset = document.text.index("evil")
    assert document.line_at(offset) == 5 == raw[: raw.index("\u202eevil")].count("\n") + 1


def test_read_binary_txt(corpus: Path) -> None:
    assert read_error(corpus, "bin.txt", b"abc\x00\x01\x02def") == "binary file (NUL bytes)"


def noise(size: int, seed: int = 7) -> bytes:
    """Random bytes without a NUL (what a compressed or encrypted file looks like)."""
    return bytes(b or 1 for b in random.Random(seed).randbytes(size))


@pytest.mark.parametrize("name", ["noise.txt", "noise.md", "noise.html"])
@pytest.mark.parametrize("size", [200_000, 2_000])
def test_read_binary_without_nul_bytes_is_refused(corpus: Path, name: str, size: int) -> None:
    reason = read_error(corpus, name, noise(size))
    assert reason.startswith("binary file (") and "control characters" in reason, reason


@pytest.mark.parametrize(
    "data",
    [
        "Caf\u00e9 \u201cquoted\u201d \u20ac5, na\u00efve. ".encode("cp1252") * 50,
        b"caf\xe9 au lait, cr\xe8me br\xfbl\xe9e \x81 and one stray C1 byte. " * 20,
        ("\x1b[1mbold\x1b[0m log line \x1b[31merror\x1b[0m at step 4\n" * 200).encode(),
        ("N\bNA\bAM\bME\bE\n  ls - list directory contents\n" * 50).encode(),
        "UTF-16 notes on the aqueduct and its arches.\n".encode("utf-16"),
    ],
    ids=["cp1252", "latin-1", "ansi-log", "overstrike", "utf-16"],
)
def test_read_text_with_a_few_odd_characters_is_still_text(corpus: Path, data: bytes) -> None:
    assert read(corpus, "odd.txt", data).text.strip()


def test_read_cp1252_text(corpus: Path) -> None:
    document = read(corpus, "old.txt", "Caf\u00e9 \u201cquoted\u201d \u20ac5".encode("cp1252"))
    assert document.text == "Caf\u00e9 \u201cquoted\u201d \u20ac5"
    assert document.notes == ("not UTF-8; decoded as cp1252",)


def test_read_latin1_fallback(corpus: Path) -> None:
    document = read(corpus, "odd.txt", b"caf\xe9 \x81")  # 0x81 is undefined in cp1252
    assert document.text == "caf\u00e9 "  # the C1 character is then removed
    assert document.notes == ("not UTF-8; decoded as latin-1",)


def test_read_utf16_with_bom(corpus: Path) -> None:
    document = read(corpus, "wide.txt", "\ufeffhello wide".encode("utf-16-le"))
    assert document.text == "hello wide"


@pytest.mark.parametrize("data", [b"", b"   \n\t\r\n  ", b"\x1b\x7f\n"])
def test_read_empty_files(corpus: Path, data: bytes) -> None:
    assert read_error(corpus, "empty.md", data) == "empty file"


MARKDOWN = """\
---
title: front matter
---
# Top Title

Intro text.

```python
# not a heading
x = 1
```

~~~
## also not a heading
~~~

## Section Two ##

Setext One
==========

Setext
Two
---

- item
---

#hashtag is not a heading
####### seven is not a heading
    # indented code is not a heading
"""


def test_read_markdown_headings(corpus: Path) -> None:
    document = read(corpus, "guide.md", MARKDOWN)
    assert document.kind == "md"
    assert document.text == MARKDOWN
    titles = [(h.level, h.title) for h in document.headings]
    assert titles == [(1, "Top Title"), (2, "Section Two"), (1, "Setext One"), (2, "Setext Two")]
    lines = MARKDOWN.split("\n")
    for heading in document.headings:
        line = lines[document.line_at(heading.offset) - 1]
        assert document.text[heading.offset :].startswith(line)
    assert [document.line_at(h.offset) for h in document.headings] == [4, 17, 19, 22]


def test_markdown_crlf_headings_line_numbers(corpus: Path) -> None:
    document = read(corpus, "win.markdown", "intro\r\n\r\n# Head\r\ntext\r\n")
    assert document.text == "intro\n\n# Head\ntext\n"
    assert [(document.line_at(h.offset), h.title) for h in document.headings] == [(3, "Head")]


def test_markdown_unclosed_front_matter_is_not_skipped() -> None:
    assert [h.title for h in markdown_headings("---\n# Real")] == ["Real"]


# --- html ------------------------------------------------------------------------------------

HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Page  Title</title>
<style>body { color: red } .STYLE_SECRET {}</style>
<script>var SCRIPT_SECRET = 1;</script></head>
<body><!-- COMMENT_SECRET -->
<noscript>NOSCRIPT_SECRET</noscript><template><p>TEMPLATE_SECRET</p></template>
<h1>Main <em>Heading</em></h1>
<p>First   paragraph
spans lines.</p><p>Second paragraph &amp; more&#x202e; &#27;[31m.</p>
<ul><li>one</li><li>two</li></ul>
<div>a<br>b</div>
<h2>Sub heading</h2>
<table><tr><td>cell 1</td><td>cell 2</td></tr></table>
<pre>keep
   indentation</pre>
</body></html>
"""


def test_read_html(corpus: Path) -> None:
    document = read(corpus, "page.html", HTML)
    assert document.kind == "html"
    for secret in ("SCRIPT", "STYLE", "NOSCRIPT", "TEMPLATE", "COMMENT", "DOCTYPE", "\x1b"):
        assert secret not in document.text
    assert "\u202e" not in document.text
    assert document.text.startswith("\nPage Title\n\n\n\n\nMain Heading\nFirst paragraph\nspans")
    assert "one two" in document.text and "a b" in document.text
    assert "cell 1 cell 2" in document.text
    assert "keep\n   indentation" in document.text
    assert "  " not in document.text.split("keep")[0]
    text = document.text
    found = [(h.level, h.title, text[h.offset :][: len(h.title)]) for h in document.headings]
    assert found == [
        (1, "Page Title", "Page Title"),
        (1, "Main Heading", "Main Heading"),
        (2, "Sub heading", "Sub heading"),
    ]


def test_html_text_keeps_the_line_of_the_file(corpus: Path) -> None:
    """Every extracted word is on the line of the HTML file where it was written, so a
    citation's line is the file's line (and never past its end)."""
    document = read(corpus, "page.html", HTML)
    source = HTML.split("\n")
    lines = document.text.split("\n")
    assert len(lines) <= len(source)
    for number, line in enumerate(lines, 1):
        for word in line.replace("&", " ").split():
            if word.isalpha():
                assert word in source[number - 1], (number, word)
    assert document.line_at(document.text.index("Sub heading")) == 12


def test_read_html_title_then_bare_body_text(corpus: Path) -> None:
    document = read(corpus, "bare.htm", "<title>T</title>Loose text <b>bold</b>")
    assert document.text == "T Loose text bold"


def test_read_html_declared_charset(corpus: Path) -> None:
    raw = '<meta charset="iso-8859-7"><p>\u0391\u03b8\u03ae\u03bd\u03b1</p>'.encode("iso-8859-7")
    document = read(corpus, "greek.htm", raw)
    assert document.text == "\u0391\u03b8\u03ae\u03bd\u03b1"
    assert document.notes == ("not UTF-8; decoded as iso-8859-7",)


@pytest.mark.parametrize(
    "html",
    ["<html><head><title>Only title</title></head><body></body></html>", "<script>x()</script>"],
)
def test_read_html_without_text(corpus: Path, html: str) -> None:
    assert read_error(corpus, "blank.html", html) == "no text in HTML"


def test_read_deeply_nested_html(corpus: Path) -> None:
    document = read(corpus, "deep.html", "<div>" * 5000 + "deep text" + "</div>" * 5000)
    assert document.text == "deep text"


# --- pdf -------------------------------------------------------------------------------------


def test_read_pdf_pages(corpus: Path) -> None:
    pages = ["First page about apples.", "Second page about pears.", "Third page about plums."]
    document = read(corpus, "fruit.pdf", make_pdf(pages))
    assert document.kind == "pdf"
    assert len(document.page_starts) == 3 and document.page_starts[0] == 0
    bounds = [*document.page_starts[1:], len(document.text) + 2]
    for number, (start, end) in enumerate(zip(document.page_starts, bounds, strict=True), 1):
        assert document.text[start : end - 2] == pages[number - 1]
        assert document.page_at(start) == number
    assert document.page_at(document.text.index("pears")) == 2


def test_read_pdf_with_blank_page_keeps_numbering(corpus: Path) -> None:
    document = read(corpus, "gap.pdf", make_pdf(["one", "", "three"]))
    assert document.text == "one\n\n\n\nthree"
    assert document.page_starts == (0, 5, 7)
    assert document.page_at(document.text.index("three")) == 3


def test_read_pdf_encrypted(corpus: Path) -> None:
    data = encrypt_pdf(make_pdf(["secret text"]), "secret")
    assert read_error(corpus, "locked.pdf", data) == "PDF is encrypted"


def test_read_pdf_encrypted_with_empty_password_is_read(corpus: Path) -> None:
    data = encrypt_pdf(make_pdf(["open text"]), "")
    assert read(corpus, "restricted.pdf", data).text == "open text"


def test_read_pdf_truncated(corpus: Path) -> None:
    data = make_pdf(["some text " * 50, "more text " * 50])
    message = read_error(corpus, "half.pdf", data[: len(data) // 2])
    assert message.startswith(("cannot parse PDF: ", "no extractable text in PDF"))


def test_read_pdf_random_bytes(corpus: Path) -> None:
    data = random.Random(1).randbytes(4096)
    assert read_error(corpus, "noise.pdf", data).startswith("cannot parse PDF: ")


def test_a_parser_bug_is_not_called_a_broken_file(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parsers name what a malformed file makes their libraries raise; anything else (a
    bug) propagates, and the reader process reports it as unexpected."""
    import pypdf

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(pypdf, "PdfReader", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        read(corpus, "any.pdf", make_pdf(["text"]))


def test_read_pdf_without_text(corpus: Path) -> None:
    message = read_error(corpus, "blank.pdf", make_pdf([""]))
    assert message == "no extractable text in PDF (scanned?)"


def test_read_pdf_expanding_beyond_cap(corpus: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=4)
    pdf.add_page()
    for line in range(150):  # repeated text compresses ~100:1 in the page stream
        pdf.text(x=5, y=5 + line * 1.8, text="word " * 300)
    data = bytes(pdf.output())
    assert read_error(corpus, "bomb.pdf", data, max_bytes=len(data)).startswith("PDF expands")


# --- docx ------------------------------------------------------------------------------------


def test_read_docx(corpus: Path) -> None:
    document = read(corpus, "report.docx", make_docx())
    assert document.kind == "docx"
    lines = document.text.split("\n")
    assert lines[:6] == [
        "Report Title",
        "Introduction",
        "The first paragraph.",
        "",
        "Details",
        "Second paragraph.",
    ]
    assert "name | value" in lines and "alpha | 42" in lines
    found = [(h.level, h.title, document.line_at(h.offset)) for h in document.headings]
    assert found == [(1, "Report Title", 1), (1, "Introduction", 2), (2, "Details", 5)]


def test_read_docx_random_bytes(corpus: Path) -> None:
    data = random.Random(2).randbytes(2048)
    assert read_error(corpus, "noise.docx", data).startswith("cannot parse .docx: ")


def test_read_docx_zip_without_parts(corpus: Path) -> None:
    out = BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "not a document")
    assert read_error(corpus, "hollow.docx", out.getvalue()).startswith("cannot parse .docx: ")


def test_read_docx_zip_bomb_refused(corpus: Path) -> None:
    out = BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"\0" * (4 * MB))
    data = out.getvalue()
    assert read_error(corpus, "bomb.docx", data, max_bytes=len(data)).startswith(".docx expands")
