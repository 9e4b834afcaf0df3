"""Generators of hostile documents (and a few good ones) for the hostile-corpus test.

Each entry of ``HOSTILE`` writes one kind of bad input and says what must happen to it:
``skip`` (with a reason matching a pattern), ``index`` (read, with bad characters removed) or
``either`` (e.g. a PDF pypdf may partly recover, a file that changes while it is read).
"""

from __future__ import annotations

import functools
import os
import random
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

OUTSIDE_MARKER = "OUTSIDE-SECRET-zqx7f3a the vault combination is 4417"
MB = 1 << 20


@dataclass(frozen=True)
class Case:
    """A file (or link, FIFO, folder) in the corpus and what must become of it."""

    path: str  # as the build report names it
    expect: str  # "skip", "index" or "either"
    reason: str = ""  # regex the skip reason must match
    parsed: bool = True  # reaches the reader process (else refused by the scan, unopened)

    @property
    def reasons(self) -> str:
        """Accepted skip reasons: a parsed file may also hit the time limit on a busy machine."""
        return f"{self.reason}|took longer than" if self.parsed else self.reason


def sparse(path: Path, size: int) -> None:
    """A file of ``size`` bytes that takes no disk space."""
    with path.open("wb") as handle:
        handle.truncate(size)


def raw_pdf(objects: list[bytes]) -> bytes:
    """A PDF from object bodies (object 1 is the catalog), with a correct xref table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def pdf_stream(data: bytes, compress: bool) -> bytes:
    if compress:
        data = zlib.compress(data, 9)
        return (
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data + b"\nendstream"
        )
    return b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def one_page_pdf(content: bytes, compress: bool = False) -> bytes:
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            pdf_stream(content, compress),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    )


@functools.cache  # one set of bytes: the files embed their creation time
def good_pdf() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in ("The observatory on Mount Varn opened in 1931.", "Its telescope is copper."):
        pdf.add_page()
        pdf.multi_cell(w=0, text=text)
    return bytes(pdf.output())


def encrypted_pdf() -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(BytesIO(good_pdf())))
    writer.encrypt(user_password="secret", owner_password="owner")
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


@functools.cache
def good_docx() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Harbour log", 1)
    document.add_paragraph("The harbour master logged forty ships in March.")
    out = BytesIO()
    document.save(out)
    return out.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    out = BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


GOOD_TEXT = {
    "good.txt": "The granite quarry lies two miles north of the river bridge.\n",
    "good.md": "# Orchard\n\nThe orchard has four hundred apple trees.\n\n"
    "## Cider\n\nPressed in May.\n",
    "good.html": "<html><head><title>Beacon</title></head><body><h1>Beacon</h1>"
    "<p>The beacon is lit at dusk.</p></body></html>",
}


def write_good(root: Path) -> list[str]:
    """The good documents, identical in the clean and the hostile corpus; their report paths."""
    for name, text in GOOD_TEXT.items():
        (root / name).write_text(text, encoding="utf-8")
    (root / "good.pdf").write_bytes(good_pdf())
    (root / "good.docx").write_bytes(good_docx())
    deep = root.joinpath(*["d"] * 120)
    deep.mkdir(parents=True)
    (deep / "deep.txt").write_text("The deepest folder holds the lantern inventory.\n")
    os.makedirs(root / b"odd".decode(), exist_ok=True)
    (root / "odd" / "new\nline.txt").write_text("A name with a newline: the monsoon log.\n")
    bad_name = os.fsencode(root / "odd") + b"/bad\xffname.txt"
    with open(bad_name, "wb") as handle:
        handle.write(b"A name that is not UTF-8: the tundra survey.\n")
    (root / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me at the vineyard, \xa35.\n".encode("cp1252"))
    (root / "utf16.txt").write_bytes("UTF-16 notes on the aqueduct.\n".encode("utf-16"))
    (root / "ansi.txt").write_text(
        "Red \x1b[31malert\x1b[0m at the \x1b]8;;http://x\x07citadel\x1b]8;;\x07, "
        "bidi \u202eevil\u202c text, C1 \x9b31m here.\n"
    )
    (root / "nul-late.txt").write_bytes(b"The railway timetable. " * 400 + b"\x00\x00tail\n")
    (root / "scripts.html").write_text(
        "<html><head><style>body{color:red} .x::after{content:'STYLE-LEAK'}</style>"
        "<script>document.write('SCRIPT-LEAK')</script></head><body>"
        + "<script>var leak = 'SCRIPT-LEAK';</script>" * 200
        + "<noscript>NOSCRIPT-LEAK</noscript><p>The parliament sits in spring.</p>"
        + "<template>TEMPLATE-LEAK</template></body></html>"
    )
    names = [*GOOD_TEXT, "good.pdf", "good.docx", "/".join(["d"] * 120) + "/deep.txt"]
    names += ["odd/new\\nline.txt", "odd/bad\\xffname.txt", "latin1.txt", "utf16.txt"]
    return [*names, "ansi.txt", "nul-late.txt", "scripts.html"]


def write_hostile(root: Path, outside: Path, rng: random.Random) -> list[Case]:
    """The bad inputs; returns what must happen to each."""
    cases: list[Case] = []

    def add(name: str, expect: str, reason: str, make: Callable[[Path], object]) -> None:
        make(root / name)
        scanned = "larger than" in reason or "symlink" in reason or reason in ("FIFO", "dangling")
        cases.append(Case(name, expect, reason, parsed=not scanned and "corpus" not in reason))

    outside.mkdir()
    (outside / "secret.txt").write_text(OUTSIDE_MARKER + "\n")
    add("binary.txt", "skip", "binary", lambda p: p.write_bytes(rng.randbytes(4096) + b"\0" * 64))
    add("empty.txt", "skip", "empty", lambda p: p.write_bytes(b""))
    add("blank.md", "skip", "empty", lambda p: p.write_bytes(b"  \n\t\n  "))
    add("only-nul.txt", "skip", "binary", lambda p: p.write_bytes(b"\0" * 1000))
    noise = bytes(b or 1 for b in rng.randbytes(200_000))  # binary without a NUL byte
    add("noise.txt", "skip", "binary file .* not text", lambda p: p.write_bytes(noise))
    add("huge-line.txt", "skip", "larger than 50 MB", lambda p: p.write_bytes(b"a" * 100 * MB))
    add("sparse.md", "skip", "larger than 50 MB", lambda p: sparse(p, 60 * MB))
    line = " ".join(rng.choice(("river", "stone", "lamp", "field")) for _ in range(250_000))
    add("long-line.txt", "skip", r"a single line of 1\.\d+ MB", lambda p: p.write_text(line))
    add("escape.txt", "skip", "leaves the corpus", lambda p: p.symlink_to(outside / "secret.txt"))
    add("passwd.txt", "skip", "leaves the corpus", lambda p: p.symlink_to("/etc/passwd"))
    add("outdir", "skip", "leaves the corpus", lambda p: p.symlink_to(outside))
    add("loop.txt", "skip", "symlink loop", lambda p: p.symlink_to(p))
    add("dangling.txt", "skip", "dangling", lambda p: p.symlink_to(root / "nowhere.txt"))
    add("fifo.txt", "skip", "FIFO", lambda p: os.mkfifo(p))
    add("zero.txt", "skip", "leaves the corpus", lambda p: p.symlink_to("/dev/zero"))
    add("encrypted.pdf", "skip", "encrypted", lambda p: p.write_bytes(encrypted_pdf()))
    add("truncated.pdf", "either", "PDF", lambda p: p.write_bytes(good_pdf()[:700]))
    add("random.pdf", "skip", "PDF", lambda p: p.write_bytes(b"%PDF-1.7\n" + rng.randbytes(9000)))
    bomb = b"BT /F1 12 Tf (" + b"A" * 200 * MB + b") Tj ET"
    add("bomb.pdf", "skip", "PDF|size cap", lambda p: p.write_bytes(one_page_pdf(bomb, True)))
    cyclic = raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
            b"<< /Type /Pages /Parent 2 0 R /Kids [3 0 R 2 0 R] /Count 1 >>",
        ]
    )
    add("cyclic.pdf", "skip", "PDF|text", lambda p: p.write_bytes(cyclic))
    slow = b"BT /F1 12 Tf " + b"1 0 Td (word) Tj " * 1_500_000 + b"ET"
    # skipped by the time limit, or by pypdf's own token limit (pypdf >= 7 stops it early)
    slow_reasons = "took longer than|cannot parse PDF: LimitReachedError"
    add("slow.pdf", "skip", slow_reasons, lambda p: p.write_bytes(one_page_pdf(slow, True)))
    add(
        "malformed.docx",
        "skip",
        "docx",
        lambda p: p.write_bytes(b"PK\x03\x04" + rng.randbytes(500)),
    )
    docx_bomb = zip_bytes({"word/document.xml": b"\0" * 120 * MB})
    add("bomb.docx", "skip", "size cap", lambda p: p.write_bytes(docx_bomb))
    fake_docx = zip_bytes({"hello.txt": b"not a word document"})
    add("notword.docx", "skip", "docx", lambda p: p.write_bytes(fake_docx))
    nested = "<div>" * 60_000 + "The nested tower." + "</div>" * 60_000
    add("nested.html", "either", "HTML|nested", lambda p: p.write_text(nested))
    add("changing.txt", "either", "", lambda p: p.write_text("Growing log.\n"))
    (root / ".hidden.txt").write_text("HIDDEN-MARKER-q9w8")  # hidden: ignored, never read
    (root / "tool.exe").write_bytes(b"MZ" + rng.randbytes(100))  # unsupported: ignored
    return cases
