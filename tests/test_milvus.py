"""The Milvus store on a real Milvus Lite: same answers and citations as the embedded store,
incremental and resumable builds, refusals (another model, two writers, a file in use, no
package, no server), verify, status and the settings that choose it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from askdoc.config import Settings, load_settings
from askdoc.engine import Engine
from askdoc.errors import (
    ConfigError,
    IndexBusyError,
    IndexCorruptError,
    IndexMismatchError,
    NoIndexError,
    StoreError,
)
from askdoc.index.milvus_reader import MilvusReader, connect
from askdoc.index.milvus_schema import passage_row_sha256
from askdoc.index.milvus_verify import verify_milvus
from askdoc.index.milvus_writer import Lease, MilvusWriter
from askdoc.types import Answer
from tests.conftest import FakeEmbedder

pytest.importorskip("pymilvus")

REPO = Path(__file__).resolve().parents[1]
DOCS = {
    "treaty.txt": (
        "The Treaty of Oakridge\n"
        "The Treaty of Oakridge was signed on 4 March 1921 in the town of Velden.\n"
        "It ended the long river dispute between the two valleys.\n"
        "Both valleys agreed to share the water of the Serle river.\n"
    ),
    "lighthouse.md": (
        "# The lighthouse\n\n"
        "## Keepers\n\n"
        "The lighthouse keeper was Mara Quill.\n"
        "She lit the lamp every night for forty years.\n\n"
        "## The lamp\n\n"
        "The lamp burned whale oil until 1902, then paraffin until 1950.\n"
    ),
    "bakery.html": (
        "<html><body><h1>The bakery</h1><p>The bakery opens at six in the morning.</p>"
        "<p>Its rye bread needs flour, water, salt and a sourdough starter.</p>"
        "<p>The baker, Tomas Brandt, learned the trade in Hamburg.</p></body></html>"
    ),
}
QUESTIONS = (
    "When was the Treaty of Oakridge signed?",
    "Who kept the lighthouse?",
    "What does the rye bread need?",
    "Where did the baker learn his trade?",
    "What did the lamp burn before 1902?",
    "How tall is the lighthouse?",
)


def write_docs(root: Path, docs: dict[str, str] = DOCS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def milvus_settings(tmp_path: Path) -> Settings:
    corpus = write_docs(tmp_path / "corpus")
    shutil.copytree(REPO / "corpus", corpus / "sample")
    return load_settings(
        environ={},
        corpus=corpus,
        index=tmp_path / "index",
        store=f"milvus-lite:{tmp_path / 'askdoc.db'}",
    )


def citations(answer: Answer) -> list[tuple[object, ...]]:
    return [
        (s.path, s.start, s.end, s.line_start, s.line_end, s.page, s.heading, s.text, s.highlight)
        for s in answer.sources
    ]


def sentences(answer: Answer) -> list[tuple[object, ...]]:
    """Each answer sentence: its text, the file of its source, its span and lines."""
    path = {source.number: source.path for source in answer.sources}
    return [
        (s.text, path.get(s.source), s.start, s.end, s.line, s.line_end) for s in answer.sentences
    ]


def test_same_answers_and_citations_as_the_embedded_store(milvus_settings: Settings) -> None:
    embedded = Engine(replace(milvus_settings, store=""), FakeEmbedder())
    milvus = Engine(milvus_settings, FakeEmbedder())
    try:
        for engine in (embedded, milvus):
            report = engine.build()
            assert report.documents == 4 and report.chunks > 4
        assert milvus.status().manifest is not None
        for question in QUESTIONS:
            for mode in ("hybrid", "dense", "lexical"):
                ours, theirs = embedded.ask(question, mode=mode), milvus.ask(question, mode=mode)
                assert theirs.found == ours.found, (question, mode)
                assert theirs.confidence == pytest.approx(ours.confidence, abs=1e-6)
                assert citations(theirs) == citations(ours), (question, mode)
                assert sentences(theirs) == sentences(ours), (question, mode)
                scores = [s.score for s in theirs.sources]
                assert scores == pytest.approx([s.score for s in ours.sources], abs=1e-5)
        words = ("signing", "signed", "Keepers", "valleys", "lit", "qwertyuiop", "1921")
        counts = []
        for engine in (embedded, milvus):
            reader = engine.open_index()
            with reader.snapshot():
                counts.append([reader.term_count(word) for word in words])
        assert counts[0] == counts[1]  # Milvus's analyser stems as FTS5's porter tokenizer does
        assert counts[1][0] == counts[1][1] > 0 and counts[1][5] == 0
        document = milvus.document("lighthouse.md")
        assert document == embedded.document("lighthouse.md")
        assert milvus.document("nothing.txt") is None
    finally:
        embedded.close()
        milvus.close()


def test_incremental_builds_embed_only_what_changed(milvus_settings: Settings) -> None:
    corpus = milvus_settings.corpus
    fake = FakeEmbedder()
    engine = Engine(milvus_settings, fake)
    try:
        first = engine.build()
        assert first.embedded == len(set(fake.encoded)) > 0
        assert engine.build().embedded == 0 and not engine.build().changed

        fake.encoded.clear()
        (corpus / "mill.txt").write_text("The mill by the river grinds barley for the town.\n")
        added = engine.build()
        assert added.added == ("mill.txt",) and added.embedded == 1
        assert fake.encoded == ["The mill by the river grinds barley for the town."]
        assert "mill.txt" in citations_of(engine, "What does the mill grind?")

        fake.encoded.clear()
        (corpus / "mill.txt").rename(corpus / "old-mill.txt")
        renamed = engine.build()
        assert renamed.renamed == (("mill.txt", "old-mill.txt"),) and renamed.embedded == 0
        assert fake.encoded == []
        assert citations_of(engine, "What does the mill grind?")[0] == "old-mill.txt"

        os.utime(corpus / "treaty.txt", (time.time() + 5, time.time() + 5))
        touched = engine.build()
        assert touched.embedded == 0 and touched.unchanged == 5

        text = (corpus / "treaty.txt").read_text() + "A copy of the treaty is kept in Velden.\n"
        (corpus / "treaty.txt").write_text(text)
        changed = engine.build()
        assert changed.updated == ("treaty.txt",) and changed.embedded == 1

        (corpus / "old-mill.txt").unlink()
        removed = engine.build()
        assert removed.removed == ("old-mill.txt",)
        assert "old-mill.txt" not in citations_of(engine, "What does the mill grind?")
        assert set(engine.open_index().documents()) == {
            "treaty.txt",
            "lighthouse.md",
            "bakery.html",
            "sample/north-korea-russia-alliance.txt",
        }
        assert verify_milvus(milvus_settings) == []
        status = engine.status()
        assert not status.drift.any and status.manifest is not None
        assert status.manifest.generation == 5  # the touch published nothing
    finally:
        engine.close()


def citations_of(engine: Engine, question: str) -> list[str]:
    return [s.path for s in engine.ask(question, mode="dense").sources]


def test_a_killed_build_resumes_without_embedding_again(milvus_settings: Settings) -> None:
    """SIGKILL in the middle of a build (after the 2nd file is written): the next build
    embeds only what was not written, and the index is the one a clean build makes."""
    corpus = milvus_settings.corpus
    for n in range(8):
        body = " ".join(f"Village {n} grows crop number {n * 7 + i}." for i in range(12))
        (corpus / f"village-{n}.txt").write_text(body + "\n")
    runner = [sys.executable, str(REPO / "tests" / "milvus_runner.py")]
    args = ["--corpus", str(corpus), "--store", milvus_settings.store, "--group", "1"]
    killed = subprocess.run(
        [*runner, *args, "--kill-after", "3"], capture_output=True, text=True, timeout=300
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    written = json.loads(killed.stdout.splitlines()[-1])["embedded"]
    assert written > 0
    resumed = subprocess.run([*runner, *args], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    after = json.loads(resumed.stdout.splitlines()[-1])
    total = after["total_passages"]
    assert after["embedded"] == total - written  # nothing committed was embedded again
    assert after["chunks"] == total
    assert verify_milvus(milvus_settings) == []


def test_another_model_is_refused_then_rebuilt(milvus_settings: Settings) -> None:
    with Engine(milvus_settings, FakeEmbedder(name="fake-a")) as engine:
        engine.build()
    other = Engine(milvus_settings, FakeEmbedder(name="fake-b"))
    with pytest.raises(IndexMismatchError, match="another embedding model.*askdoc index"):
        other.ask("Who kept the lighthouse?")
    report = other.build()
    assert report.full and any("full rebuild" in note for note in report.notes)
    assert other.ask("Who kept the lighthouse?").found
    other.close()


def test_two_writers_are_refused(milvus_settings: Settings) -> None:
    with Engine(milvus_settings, FakeEmbedder()) as engine:
        engine.build()
    index = connect(milvus_settings)
    try:
        lease = Lease(index, wait=False)
        writer = MilvusWriter(milvus_settings, FakeEmbedder())
        with pytest.raises(IndexBusyError, match="another `askdoc index`"):
            writer.build()
        lease.release()
        writer.build()  # free again
        # a lease whose holder on this machine is gone is taken over at once
        dead = {"host": socket.gethostname(), "pid": 2**22 + 1, "id": "x", "expires": 1e12}
        index.put_meta({"writer": json.dumps(dead)})
        assert not MilvusWriter(milvus_settings, FakeEmbedder()).build().changed
    finally:
        index.close()


def test_a_lite_file_open_in_another_process(milvus_settings: Settings, tmp_path: Path) -> None:
    held = tmp_path / "held.db"
    ready = tmp_path / "ready"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, pathlib; from pymilvus import MilvusClient; "
            "c = MilvusClient(sys.argv[1]); pathlib.Path(sys.argv[2]).touch(); time.sleep(60)",
            str(held),
            str(ready),
        ],
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        with pytest.raises(StoreError, match="open in another process") as raised:
            MilvusReader(replace(milvus_settings, store=f"milvus-lite:{held}"))
        assert "\n" not in str(raised.value)
    finally:
        holder.kill()
        holder.wait()


def test_damage_is_found_by_verify_and_refused_by_readers(milvus_settings: Settings) -> None:
    engine = Engine(milvus_settings, FakeEmbedder())
    engine.build()
    engine.close()
    index = connect(milvus_settings)
    try:
        rows = index.all_rows(index.names.passages, ["*"])
        row = next(r for r in rows if "Mara Quill" in r["text"])
        forged = {**row, "text": row["text"].replace("Mara Quill", "Eve Forger")}
        forged.pop("sparse", None)
        assert passage_row_sha256(forged) != forged["row_sha256"]
        index.upsert_passages([forged])
    finally:
        index.close()
    problems = verify_milvus(milvus_settings)
    assert any("fails its checksum" in p for p in problems)
    assert problems[-1] == "rebuild with `askdoc index --full`"
    with Engine(milvus_settings, FakeEmbedder()) as engine:
        with pytest.raises(IndexCorruptError, match="is damaged"):
            engine.ask("Who kept the lighthouse?", mode="dense")


def test_no_index_no_package_no_server(
    milvus_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert verify_milvus(milvus_settings) == ["there is no index here yet: run `askdoc index`"]
    with Engine(milvus_settings, FakeEmbedder()) as engine:
        assert engine.status().problem == "no index yet"
        with pytest.raises(NoIndexError, match="no index in Milvus collection 'askdoc' at"):
            engine.ask("Who kept the lighthouse?")
    assert not Path(milvus_settings.store.removeprefix("milvus-lite:")).exists()  # not made
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    away = replace(milvus_settings, store=f"http://127.0.0.1:{port}")
    with pytest.raises(StoreError, match="cannot reach the Milvus server at http://127.0.0.1"):
        MilvusReader(away)
    monkeypatch.setitem(sys.modules, "pymilvus", None)
    with pytest.raises(StoreError, match=r"pip install 'askdoc\[milvus\]'"):
        MilvusWriter(milvus_settings, FakeEmbedder()).build()


def test_store_settings(tmp_path: Path) -> None:
    toml = tmp_path / "askdoc.toml"
    toml.write_text(
        '[askdoc]\nstore = "milvus-lite:idx.db"\n[milvus]\ntoken = "u:p"\ncollection = "docs"\n'
    )
    settings = load_settings(config_file=toml, environ={})
    assert (settings.store, settings.milvus_token, settings.milvus_collection) == (
        "milvus-lite:idx.db",
        "u:p",
        "docs",
    )
    env = {"ASKDOC_STORE": "https://milvus.example:19530"}
    assert load_settings(config_file=toml, environ=env).store == "https://milvus.example:19530"
    for bad in ("milvus-lite:idx", "milvus-lite:bad name.db", "ftp://x", "http://"):
        with pytest.raises(ConfigError, match="setting 'store' must be"):
            load_settings(environ={}, store=bad)
    with pytest.raises(ConfigError, match="setting 'milvus_collection' must be"):
        load_settings(environ={}, milvus_collection="no-dashes")


def test_the_library_api_on_milvus(milvus_settings: Settings) -> None:
    import askdoc

    with askdoc.open(
        corpus=milvus_settings.corpus, store=milvus_settings.store, embedder=FakeEmbedder()
    ) as engine:
        assert engine.build().documents == 4
        answer = engine.ask("When was the Treaty of Oakridge signed?")
        assert answer.found and answer.sources[0].path == "treaty.txt"
