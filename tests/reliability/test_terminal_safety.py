"""Promise 4: the terminal is never driven by a document.

Hundreds of generated hostile strings (CSI/OSC/DCS escape sequences, C0 and C1 controls, bidi
overrides and isolates, rich/Textual markup, format strings) sit in documents, headings, file
names and questions. Through ``askdoc index``, ``askdoc ask`` (text and ``--json``) and ``askdoc
status``, no raw ESC, C0 (other than newline and tab), DEL, C1 or bidi-override character reaches
the output -- neither in the raw bytes nor in any decoded JSON string -- and markup-like text is
printed verbatim, never interpreted.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reliability_helpers import fake_settings, figure, scaled

from askdoc.cli import main
from tests.conftest import FakeEmbedder

FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
CONTROLS = [
    "\x1b[31m",
    "\x1b[2J\x1b[H",
    "\x1b]0;pwned title\x07",
    "\x1b]8;;http://evil.example/\x1b\\link\x1b]8;;\x1b\\",
    "\x1b]52;c;ZWNobyBoaQ==\x07",
    "\x1bP+q544e\x1b\\",
    "\x1b[6n",
    "\x1bc",
    "\x9b31m",
    "\x9d0;c1 title\x9c",
    "\x85",
    "\x07",
    "\x08\x08\x08",
    "\x00",
    "\x0b\x0c",
    "\x7f",
    "\u202e",
    "\u202d",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\u202a\u202b\u202c",
]
MARKUP = [
    "[bold red]styled[/]",
    "[link=http://evil.example]click me[/link]",
    "[@click=app.quit]quit[/]",
    "[ @click=app.screenshot('x.svg','/tmp')]shot[/]",
    "[/",
    "[/]",
    ":smile: :warning:",
    "<script>alert(1)</script>",
    "${HOME} $(id) `id`",
    "%s %d {0} {name}",
    "\\[escaped]",
    "[[double]]",
]


NAME_TRICKS = ["", "\x1b[31m", "\u202e", "[b]", "\x9b2J"]


def hostile_strings(count: int, rng: random.Random) -> list[str]:
    out = []
    for n in range(count):
        parts = [f"kw{n:04d}"]
        for _ in range(rng.randint(1, 4)):
            parts.append(rng.choice(CONTROLS if rng.random() < 0.6 else MARKUP))
            parts.append(rng.choice(["river", "lamp", "stone", "gate", ""]))
        out.append(" ".join(parts))
    return out


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings_in(key)
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def assert_clean(output: str, where: str) -> None:
    found = FORBIDDEN.search(output)
    assert found is None, f"{where}: raw {found.group()!r} reached the terminal"


@pytest.fixture
def fake_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """``askdoc.cli.main`` with the fake embedder in place of the real model."""
    monkeypatch.setattr("askdoc.engine.Embedder", lambda *_args, **_kwargs: FakeEmbedder())


@pytest.mark.timeout(1800)
def test_no_document_drives_the_terminal(
    tmp_path: Path, fake_cli: None, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(404)
    strings = hostile_strings(scaled(ci=240, full=1200), rng)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    per_doc = 6
    docs = []
    for d, begin in enumerate(range(0, len(strings), per_doc)):
        group = strings[begin : begin + per_doc]
        heading = rng.choice(CONTROLS) + " Heading " + rng.choice(MARKUP)
        name = f"doc{d:03d}{rng.choice(NAME_TRICKS)}.md"
        (corpus / name).write_text(f"# {heading}\n\n" + "\n\n".join(group) + "\n")
        docs.append(group)
    settings = fake_settings(corpus, tmp_path / "index")
    common = ["--corpus", str(corpus), "--index", str(settings.index)]

    assert main([*common, "index"]) == 0
    out = capsys.readouterr()
    assert_clean(out.out + out.err, "askdoc index")

    shown = 0
    for d, group in enumerate(docs):
        question = f"kw{d * per_doc:04d} {rng.choice(CONTROLS)} {rng.choice(MARKUP)}?"
        assert main([*common, "ask", question, "--passages"]) == 0  # whole passages shown
        text = capsys.readouterr()
        assert_clean(text.out + text.err, f"askdoc ask (doc {d})")
        assert main([*common, "ask", question, "--json"]) == 0
        raw = capsys.readouterr()
        assert_clean(raw.out + raw.err, f"askdoc ask --json (doc {d})")
        data = json.loads(raw.out)
        for value in strings_in(data):
            assert_clean(value, f"a decoded JSON string (doc {d})")
        for markup in MARKUP:
            if any(markup in s for s in group) and markup in json.dumps(data, ensure_ascii=False):
                assert markup in text.out, f"{markup!r} was not shown verbatim"
                shown += 1
    for path in corpus.iterdir():
        path.write_text(path.read_text() + "\nMore \x1b[5m text.\n")
    assert main([*common, "status"]) == 0
    status = capsys.readouterr()
    assert_clean(status.out + status.err, "askdoc status")
    assert "changed" in status.out
    assert shown > 0
    figure("terminal safety", hostile_strings=len(strings), asks=2 * len(docs), raw_leaks=0)
