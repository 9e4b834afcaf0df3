"""Promise 6: an index built with another model, dimension, chunking or format is refused with
the fix named; ``askdoc status`` lists drifted files; a renamed file is a rename (no
re-embedding)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from reliability_helpers import fake_identity, fake_settings

from askdoc.cli import main
from askdoc.config import Settings
from askdoc.engine import Engine
from askdoc.errors import IndexMismatchError
from askdoc.index.manifest import FORMAT_VERSION, manifest_checksum
from askdoc.index.reader import IndexReader
from askdoc.index.schema import DB_NAME
from askdoc.index.verify import verify_index
from tests.conftest import SAMPLE_CORPUS, FakeEmbedder

QUESTION = "Who signed the strategic partnership agreement?"
FIX = "run `askdoc index --full` to rebuild it"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLE_CORPUS, corpus)
    (corpus / "birds.md").write_text("# Birds\n\nPenguins live in the Southern Hemisphere.\n")
    return fake_settings(corpus, tmp_path / "index")


@pytest.fixture
def fake_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("askdoc.engine.Embedder", lambda *_args, **_kwargs: FakeEmbedder())


def test_other_dimension_is_refused_with_the_fix(settings: Settings) -> None:
    Engine(settings, FakeEmbedder(dimension=384)).build()
    narrow = Engine(settings, FakeEmbedder(dimension=256))
    with pytest.raises(IndexMismatchError) as caught:
        narrow.ask(QUESTION)
    message = str(caught.value)
    assert "(384-dim), not fake-bow (256-dim)" in message and message.endswith(FIX)
    report = narrow.build()  # `askdoc index` rebuilds for the new dimension
    assert report.full and any("another embedding model" in n for n in report.notes)
    assert narrow.ask(QUESTION).sources and verify_index(settings.index) == []


def test_other_chunking_is_refused_through_the_cli(
    settings: Settings, fake_cli: None, capsys: pytest.CaptureFixture[str]
) -> None:
    Engine(settings, FakeEmbedder()).build()
    common = ["--corpus", str(settings.corpus), "--index", str(settings.index)]
    assert main([*common, "ask", QUESTION]) == 0
    capsys.readouterr()
    toml = settings.index.parent / "askdoc.toml"
    toml.write_text("[askdoc]\nchunk_tokens = 120\n")
    assert main([*common, "--config", str(toml), "ask", QUESTION]) == 1
    err = capsys.readouterr().err
    assert "other chunking settings" in err and FIX in err and err.count("\n") == 1


def test_other_format_is_refused_then_replaced(settings: Settings) -> None:
    Engine(settings, FakeEmbedder()).build()
    conn = sqlite3.connect(settings.index / DB_NAME)
    raw = json.loads(conn.execute("SELECT value FROM meta WHERE key = 'manifest'").fetchone()[0])
    raw["format_version"] = 1
    text = json.dumps(raw, sort_keys=True)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'manifest'", (text,))
    conn.execute(
        "UPDATE meta SET value = ? WHERE key = 'manifest_sha256'", (manifest_checksum(text),)
    )
    conn.commit()
    conn.close()
    expected = f"index format 1, this askdoc reads {FORMAT_VERSION}: {FIX}"
    with pytest.raises(IndexMismatchError, match=expected):
        IndexReader(settings.index, *fake_identity(settings))
    report = Engine(settings, FakeEmbedder()).build()
    assert report.full and f"index format 1 replaced by {FORMAT_VERSION}" in report.notes
    assert Engine(settings, FakeEmbedder()).ask(QUESTION).sources


def test_status_lists_drifted_files(
    settings: Settings, fake_cli: None, capsys: pytest.CaptureFixture[str]
) -> None:
    Engine(settings, FakeEmbedder()).build()
    common = ["--corpus", str(settings.corpus), "--index", str(settings.index)]
    assert main([*common, "status"]) == 0
    assert "drift   none" in capsys.readouterr().out
    (settings.corpus / "new.txt").write_text("A new file about lighthouses.\n")
    (settings.corpus / "birds.md").write_text("# Birds\n\nAlbatrosses glide for hours.\n")
    (settings.corpus / "north-korea-russia-alliance.txt").unlink()
    assert main([*common, "status"]) == 0
    out = capsys.readouterr().out
    for label, name in (("added", "new.txt"), ("changed", "birds.md")):
        assert f"  {label}: {settings.corpus / name}\n" in out
    assert f"  removed: {settings.corpus / 'north-korea-russia-alliance.txt'}\n" in out


def test_rename_is_a_rename_without_reembedding(
    settings: Settings, fake_cli: None, capsys: pytest.CaptureFixture[str]
) -> None:
    embedder = FakeEmbedder()
    first = Engine(settings, embedder).build()
    (settings.corpus / "birds.md").rename(settings.corpus / "seabirds.md")
    embedder.encoded.clear()
    report = Engine(settings, embedder).build()
    assert report.renamed == (("birds.md", "seabirds.md"),) and not report.added
    assert embedder.encoded == [] and report.embedded == 0 and report.chunks == first.chunks
    assert verify_index(settings.index) == []
    sources = Engine(replace(settings), FakeEmbedder()).ask("Where do penguins live?").sources
    assert sources[0].path == "seabirds.md"
