"""Promise 7: limits. A long question is cut with a notice; peak memory while indexing a big
corpus of many files stays bounded (50 MB here, 1 GB in ``make reliability``); the size cap
rejects a sparse 10 GB file in well under a second, without reading it; a 40 MB single line
is refused with a reason naming ``max_line_chars`` (not a crashed reader process)."""

from __future__ import annotations

import random
import re
import shutil
import time
from pathlib import Path

import pytest
from reliability_helpers import WORDS, fake_settings, figure, run_runner, scaled

from askdoc.engine import Engine
from askdoc.index.schema import DB_NAME
from askdoc.ingest.isolation import IsolatedReader
from tests.conftest import SAMPLE_CORPUS, FakeEmbedder

MB = 1 << 20
FILE_KB = 100


def test_long_question_is_cut_with_a_notice(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLE_CORPUS, corpus)
    settings = fake_settings(corpus, tmp_path / "index")
    engine = Engine(settings, FakeEmbedder())
    engine.build()
    question = "Who signed the strategic partnership agreement? " + "pact " * 10_000
    assert len(question) > 50_000
    started = time.perf_counter()
    answer = engine.ask(question)
    seconds = time.perf_counter() - started
    assert "question cut to its first 1000 characters" in answer.message
    assert len(answer.question) <= settings.max_question_chars and answer.sources
    engine.close()
    figure("50k-character question", cut_to=settings.max_question_chars, seconds=round(seconds, 3))


def test_size_cap_rejects_a_sparse_10gb_file_at_once(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLE_CORPUS, corpus)
    huge = corpus / "huge.txt"
    with huge.open("wb") as handle:
        handle.truncate(10 << 30)
    settings = fake_settings(corpus, tmp_path / "index")
    started = time.perf_counter()
    report = Engine(settings, FakeEmbedder()).build()
    seconds = time.perf_counter() - started
    assert [(s.path, s.reason) for s in report.skipped] == [("huge.txt", "larger than 50 MB")]
    assert seconds < 5, f"the 10 GB file took {seconds:.1f} s to reject"
    figure("sparse 10 GB file", rejected_in_s=round(seconds, 3), whole_build=True)


def test_a_single_line_of_40_mb_is_refused_with_a_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLE_CORPUS, corpus)
    line = b"river stone lamp field harbour granite "
    (corpus / "one-line.txt").write_bytes(line * (40 * MB // len(line)))
    settings = fake_settings(corpus, tmp_path / "index")
    started = time.perf_counter()
    report = Engine(settings, FakeEmbedder()).build()
    seconds = time.perf_counter() - started
    reasons = {s.path: s.reason for s in report.skipped}
    assert re.fullmatch(
        r"a single line of 40 MB: longer than askdoc reads "
        r"\(max_line_chars = 1,000,000 characters\)",
        reasons["one-line.txt"],
    ), reasons
    assert report.added == ("north-korea-russia-alliance.txt",)
    reads: list[str] = []  # the next build remembers the skipped file: it is not read again
    real = IsolatedReader.read
    monkeypatch.setattr(IsolatedReader, "read", lambda r, e: reads.append(e.path) or real(r, e))
    started = time.perf_counter()
    again = Engine(settings, FakeEmbedder()).build()
    again_s = time.perf_counter() - started
    assert reads == [] and {s.path: s.reason for s in again.skipped} == reasons
    figure(
        "40 MB single line",
        reason=reasons["one-line.txt"],
        first_build_s=round(seconds, 1),
        unchanged_build_s=round(again_s, 3),
    )


def write_corpus(root: Path, megabytes: int, rng: random.Random) -> int:
    """``megabytes`` of distinct English-like text in files of about FILE_KB KB each."""
    sentences = [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20))).capitalize() + "."
        for _ in range(3000)
    ]
    files = megabytes * 1024 // FILE_KB
    for f in range(files):
        folder = root / f"part{f // 500:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        parts, size, p = [], 0, 0
        while size < FILE_KB * 1024:
            p += 1
            para = f"File {f} section {p}. " + " ".join(rng.sample(sentences, 6))
            parts.append(para)
            size += len(para) + 2
        (folder / f"doc{f:05d}.txt").write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return files


@pytest.mark.timeout(7200)
def test_peak_memory_while_indexing_a_big_corpus(tmp_path: Path) -> None:
    megabytes = scaled(ci=20, full=1024)
    corpus = tmp_path / "big"
    files = write_corpus(corpus, megabytes, random.Random(1))
    index = tmp_path / "index"
    try:
        report = run_runner(corpus, index, "--exact-below", str(1 << 40), timeout=7000)
        db_mb = (index / DB_NAME).stat().st_size / MB
        faiss_mb = sum(p.stat().st_size for p in index.glob("vectors-*.faiss")) / MB
    finally:
        shutil.rmtree(corpus, ignore_errors=True)
        shutil.rmtree(index, ignore_errors=True)
    vectors_mb = report["chunks"] * 384 * 4 / MB
    peak = report["peak_rss_mb"]
    figure(
        "indexing memory",
        corpus_mb=megabytes,
        files=files,
        passages=report["chunks"],
        seconds=report["seconds"],
        peak_rss_mb=peak,
        reader_process_peak_rss_mb=report["reader_peak_rss_mb"],
        vectors_mb=round(vectors_mb, 1),
        faiss_file_mb=round(faiss_mb, 1),
        database_mb=round(db_mb, 1),
    )
    assert report["documents"] and len(report["documents"]) == files
    # Bounded: a fixed base, the FAISS index being built (the vectors, held once), one embedding
    # group and one document -- not the corpus text.
    assert peak < 250 + 1.3 * vectors_mb, f"peak {peak} MB for {vectors_mb:.0f} MB of vectors"
    assert report["reader_peak_rss_mb"] < 600
