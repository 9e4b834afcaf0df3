"""Evaluation: loaders, judging one answer, a tiny BEIR benchmark end to end (fake embedder),
the command line, and the shipped sample set with the real model."""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from askdoc.cli import main
from askdoc.config import Settings
from askdoc.embedder import Embedder
from askdoc.engine import Engine
from askdoc.errors import EvalError
from askdoc.evaluation import cli as eval_cli
from askdoc.evaluation.data import (
    GoldSource,
    QARecord,
    doc_file_name,
    doc_id_of,
    load_beir,
    load_qa,
    write_beir_docs,
)
from askdoc.evaluation.report import (
    check_thresholds,
    compare,
    compare_table,
    parse_threshold,
    question_table,
    summary_table,
    to_markdown,
)
from askdoc.evaluation.run import EvalResult, ModeRun, count, evaluate, judge, summarize
from askdoc.types import Answer, AnswerSentence, Source
from tests.conftest import SAMPLE_CORPUS, FakeEmbedder

REPO = Path(__file__).resolve().parents[1]
L3 = math.log2(3)


# --- loaders -------------------------------------------------------------------------------


def test_load_jsonl_reports_bad_lines_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    lines = [
        '{"id": "a", "question": "When?", "answers": ["June 19"], "sources": ["c/x.txt:8"]}',
        "",
        "# a comment",
        '{"question": "Who signed?"}',
        "{not json",
        '{"id": "c", "answers": ["x"]}',
        '{"id": "a", "question": "Again?"}',
        '{"id": 7, "question": "Why?", "sources": "x.txt", "unanswerable": false, "note": 1}',
        '{"id": "u", "question": "Unknown?", "unanswerable": true}',
        '{"id": "v", "question": "Bad?", "unanswerable": true, "answers": ["x"]}',
        '{"id": "w", "question": "Bad source?", "sources": ["x.txt:0"]}',
        "[1, 2]",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = load_qa(path)
    assert [r.id for r in data.records] == ["a", "4", "7", "u"]
    first, defaulted, seven, unanswerable = data.records
    assert first.answers == ("June 19",) and first.sources == (GoldSource("c/x.txt", 8),)
    assert defaulted == QARecord("4", "Who signed?", line=4)
    assert seven.sources == (GoldSource("x.txt"),) and not seven.unanswerable
    assert unanswerable.unanswerable and unanswerable.line == 9
    problems = "\n".join(data.problems)
    for number in (5, 6, 7, 8, 10, 11, 12):
        assert f"qa.jsonl:{number}: " in problems
    assert "not valid JSON" in problems and "'question' is missing" in problems
    assert "duplicate id 'a'" in problems and "unknown fields ignored: note" in problems
    assert "lines and pages start at 1" in problems


@pytest.mark.parametrize("wrapped", [False, True])
def test_load_yaml_list_or_questions_key(tmp_path: Path, wrapped: bool) -> None:
    body = """\
- id: q1
  question: When was the pact signed?
  answers: [June 19]
  sources: [corpus/x.txt:8, corpus/y.pdf#p3]
- question: Is it raining on Mars?
  unanswerable: true
- answers: [no question here]
- id: 12
  question: "Which think tank?"
"""
    indented = "".join("  " + ln + "\n" for ln in body.splitlines())
    text = "questions:\n" + indented if wrapped else body
    path = tmp_path / "qa.yaml"
    path.write_text(text, encoding="utf-8")
    data = load_qa(path)
    offset = 1 if wrapped else 0
    assert [r.id for r in data.records] == ["q1", str(5 + offset), "12"]
    pdf = GoldSource("corpus/y.pdf", page=3)
    assert data.records[0].sources == (GoldSource("corpus/x.txt", 8), pdf)
    assert data.records[1].unanswerable
    assert data.problems == (f"{path}:{7 + offset}: 'question' is missing or empty; skipped",)


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(EvalError, match="no such file"):
        load_qa(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- question: [unclosed\n", encoding="utf-8")
    with pytest.raises(EvalError, match="not valid YAML at line"):
        load_qa(bad)
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"id": "x"}\n', encoding="utf-8")
    with pytest.raises(EvalError, match="no usable questions"):
        load_qa(empty)


def test_shipped_sets_load_cleanly() -> None:
    for name in (
        "sample.jsonl",
        "pydoc.jsonl",
        "pydoc-users.jsonl",
        "atlas-tune.jsonl",
        "atlas-heldout.jsonl",
    ):
        data = load_qa(REPO / "eval" / name)
        assert data.records and data.problems == ()


@pytest.mark.parametrize(
    ("text", "gold"),
    [
        ("corpus/x.txt:8", GoldSource("corpus/x.txt", 8)),
        ("./x.txt:L12", GoldSource("x.txt", 12)),
        ("docs/r.pdf#p3", GoldSource("docs/r.pdf", page=3)),
        ("notes/a:b.txt", GoldSource("notes/a:b.txt")),
    ],
)
def test_gold_source_parse(text: str, gold: GoldSource) -> None:
    assert GoldSource.parse(text) == gold


def src(n: int, path: str, lines: tuple[int, int], page: int | None = None) -> Source:
    return Source(n, path, f"passage {n}", 0, 10, lines[0], lines[1], page, "", 0.5)


def test_gold_source_matching() -> None:
    passage = src(1, "assert.txt", (10, 14))
    assert GoldSource.parse("pydoc-corpus/assert.txt:12").matches(passage)
    assert GoldSource.parse("assert.txt").matches(passage)
    assert not GoldSource.parse("pydoc-corpus/assert.txt:15").matches(passage)
    assert not GoldSource.parse("pydoc-corpus/sert.txt").matches(src(1, "assert.txt", (1, 1)))
    assert not GoldSource.parse("corpus/x.txt").matches(src(1, "y/x.txt", (1, 1)))
    assert GoldSource.parse("r.pdf#p3").matches(src(1, "r.pdf", (1, 9), page=3))
    assert not GoldSource.parse("r.pdf#p3").matches(src(1, "r.pdf", (1, 9), page=4))


def test_judge_answer_citation_and_pass() -> None:
    record = QARecord("q", "When?", ("june 19",), (GoldSource.parse("corpus/x.txt:8"),))
    sources = (src(1, "x.txt", (1, 3)), src(2, "x.txt", (6, 9)), src(3, "x.txt", (7, 8)))
    right = AnswerSentence("Signed on June 19.", 2, 0, 5, 8, 0.9)
    answer = Answer("When?", "When?", True, 0.9, (right,), sources)
    result = judge(record, answer, 5, {})
    assert result.passed and result.answer_contains and result.citation_correct
    assert result.citation_exact and result.first_rank == 2
    assert result.retrieval is not None
    assert result.retrieval["mrr@10"] == 0.5 and result.retrieval["hit@1"] == 0.0
    assert result.retrieval["ndcg@10"] == pytest.approx(1 / L3)  # passage 3 is a duplicate
    assert result.cited == "x.txt:L6-9"

    wrong = replace(right, source=1, line=2)  # right words, cited passage lacks line 8
    result = judge(record, replace(answer, sentences=(wrong,)), 5, {})
    assert result.answer_contains and result.citation_correct is False and not result.passed
    near = replace(right, line=7)  # right passage, another line of it
    result = judge(record, replace(answer, sentences=(near,)), 5, {})
    assert result.passed and result.citation_correct and result.citation_exact is False

    spanning = replace(right, line=7, line_end=9)  # a sentence running over lines 7-9
    assert judge(record, replace(answer, sentences=(spanning,)), 5, {}).citation_exact

    refused = Answer("When?", "When?", False, 0.1, (), sources, "Not found in the documents.")
    result = judge(record, refused, 5, {})
    assert not result.passed and result.answer_contains is False
    assert result.passage_contains is False  # the passages' text is "passage n"
    unanswerable = QARecord("u", "Mars?", unanswerable=True)
    assert judge(unanswerable, refused, 5, {}).passed
    assert not judge(unanswerable, answer, 5, {}).passed
    assert judge(unanswerable, answer, 5, {}).retrieval is None


@pytest.mark.parametrize("doc_id", ["plain-1", "a/b", ".hidden", "x y%z:*?", "ünï", "..", "~"])
def test_doc_file_names_are_safe_and_reversible(doc_id: str) -> None:
    name = doc_file_name(doc_id)
    assert "/" not in name and not name.startswith(".") and name.endswith(".txt")
    assert doc_id_of(name) == doc_id


# --- a tiny BEIR benchmark, fake embedder ------------------------------------------------------

DOCS = {
    "d1": ("Volcano", "Basalt lava flows from the crater."),
    "d2": ("Glacier", "Ice sheets carve fjords slowly."),
    "d3": ("Desert", "Camels cross dunes under scorching sun."),
    "d4": ("Ocean", "Whales migrate through deep trenches."),
    "d5": ("Forest", "Moss grows on cooled lava beneath towering redwoods."),
    "d/6": ("Prairie", "Bison graze across tallgrass plains."),
}
QUERIES = {
    "q1": "basalt lava crater",  # d1 (grade 1) first, d5 (grade 2, only "lava") second
    "q2": "camels dunes",  # d3 only
    "q3": "whales migrate trenches ice",  # d4 (judged 0) first, relevant d2 ("ice") second
    "q4": "bison",  # not in qrels: not run
}
QRELS = [("q1", "d1", 1), ("q1", "d5", 2), ("q2", "d3", 1), ("q3", "d2", 1), ("q3", "d4", 0)]
NDCG_Q1 = (1 + 2 / L3) / (2 + 1 / L3)


@pytest.fixture
def beir_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny-beir"
    (folder / "qrels").mkdir(parents=True)
    corpus = [{"_id": k, "title": t, "text": x} for k, (t, x) in DOCS.items()]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus))
    queries = [{"_id": k, "text": v} for k, v in QUERIES.items()]
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    rows = ["query-id\tcorpus-id\tscore", *("\t".join(map(str, r)) for r in QRELS)]
    (folder / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n")
    return folder


def check_tiny_beir(result: EvalResult, modes: list[str]) -> None:
    assert [run.mode for run in result.runs] == modes
    for run in result.runs:
        by_id = {r.id: r for r in run.results}
        assert list(by_id) == ["q1", "q2", "q3"]
        assert by_id["q1"].retrieved[:2] == ("d1", "d5")
        assert by_id["q2"].retrieved[0] == "d3"
        assert by_id["q3"].retrieved[:2] == ("d4", "d2")
        s = run.summary
        assert s["hit@1"] == pytest.approx(2 / 3)
        assert s["hit@3"] == s["hit@5"] == s["hit@10"] == s["recall@5"] == 1.0
        assert s["mrr@10"] == pytest.approx((1 + 1 + 0.5) / 3)
        assert s["ndcg@10"] == pytest.approx((NDCG_Q1 + 1 + 1 / L3) / 3)
        assert s["pass_rate"] == 1.0 and s["answer_contains"] is None
        assert s["refusal_recall"] is None and s["latency_p50_ms"] is not None
        assert run.counts["questions"] == 3


def test_tiny_beir_end_to_end(beir_dir: Path, tmp_path: Path, fake_embedder: FakeEmbedder) -> None:
    dataset, docs = load_beir(beir_dir)
    assert [r.id for r in dataset.records] == ["q1", "q2", "q3"]
    assert dict(dataset.records[0].grades) == {"d1": 1, "d5": 2}
    out = tmp_path / "cache" / "docs"
    doc_ids = write_beir_docs(docs, out)
    assert doc_ids["d%2F6.txt"] == "d/6"
    assert (out / "d1.txt").read_text() == "Volcano\nBasalt lava flows from the crater.\n"
    settings = replace(Settings(), corpus=out, index=tmp_path / "cache" / "index")
    engine = Engine(settings, fake_embedder)
    assert engine.build().documents == 6
    result = evaluate(engine, replace(dataset, doc_ids=doc_ids), ["lexical", "dense"], 5)
    check_tiny_beir(result, ["lexical", "dense"])
    # run again: the files are not rewritten and nothing is embedded again
    mtimes = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    assert write_beir_docs(docs, out) == doc_ids
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes
    assert engine.build().embedded == 0
    engine.close()


# --- the command line (fake embedder) ------------------------------------------------------


@pytest.fixture
def fake_cli(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    embedder = FakeEmbedder()
    monkeypatch.setattr(eval_cli, "make_engine", lambda s: Engine(s, embedder))
    monkeypatch.delenv("ASKDOC_CONFIG", raising=False)
    yield


def test_cli_json_markdown_compare_and_thresholds(
    beir_dir: Path, tmp_path: Path, fake_cli: None, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["eval", "--beir", str(beir_dir), "--cache", str(tmp_path / "cache")]
    old, md = tmp_path / "out" / "old.json", tmp_path / "out" / "r.md"
    argv = [*base, "--modes", "lexical,dense", "--json", str(old), "--markdown", str(md)]
    assert main([*argv, "--min", "hit@3=1", "--max", "latency_p95_ms=60000"]) == 0
    data = json.loads(old.read_text())
    assert data["format"] == "askdoc-eval" and data["kind"] == "beir"
    assert [r["mode"] for r in data["runs"]] == ["lexical", "dense"]
    assert data["runs"][0]["summary"]["mrr@10"] == pytest.approx(2.5 / 3)
    assert data["runs"][1]["questions"][0]["retrieved"][:2] == ["d1", "d5"]
    text = md.read_text()
    assert "| metric | lexical | dense |" in text and "| hit@1 | 0.667 | 0.667 |" in text
    out = capsys.readouterr().out
    assert "tiny-beir · lexical" in out and "q3" in out and "hit@1" in out

    new = tmp_path / "new.json"
    code = main([*base, "--mode", "dense", "--compare", str(old), "--json", str(new),
                 "--summary-only", "--min", "hit@1=0.9", "--min", "mrr@10=0.5"])  # fmt: skip
    assert code == 1
    captured = capsys.readouterr()
    assert "compared with the earlier report" in captured.out
    assert "dense: hit@1 = 0.667 is below the minimum 0.9" in captured.err
    assert "mrr@10" not in captured.err
    data = json.loads(new.read_text())
    change = next(c for c in data["compare"] if c["metric"] == "hit@1")
    assert change["mode"] == "dense" and change["delta"] == pytest.approx(0.0)
    assert data["thresholds_missed"] == ["dense: hit@1 = 0.667 is below the minimum 0.9"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--min", "hit@7=0.5"], "unknown metric 'hit@7'"),
        (["--min", "hit@5"], "expected METRIC=NUMBER"),
        (["--modes", "dense,fuzzy"], "unknown mode 'fuzzy'"),
        (["--compare", "nowhere.json"], "no such file"),
    ],
)
def test_cli_usage_errors(
    beir_dir: Path,
    tmp_path: Path,
    fake_cli: None,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    argv = ["eval", "--beir", str(beir_dir), "--cache", str(tmp_path / "c"), *extra]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("askdoc: ") and message in err and err.count("\n") == 1


def test_cli_qa_file_on_another_corpus(
    tmp_path: Path, fake_cli: None, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "pets.txt").write_text("Cats purr loudly.\nDogs bark at strangers.\n")
    qa = tmp_path / "qa.jsonl"
    rows = [
        {"id": "dogs", "question": "What do dogs bark at?", "answers": ["strangers"],
         "sources": ["docs/pets.txt:2"]},
        {"id": "broken"},
    ]  # fmt: skip
    qa.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cache = tmp_path / "cache"
    argv = ["eval", str(qa), "--corpus", str(corpus), "--cache", str(cache), "--mode", "lexical"]
    assert main([*argv, "--json", str(tmp_path / "r.json")]) == 0
    captured = capsys.readouterr()
    assert f"warning: {qa}:2: 'question' is missing or empty; skipped" in captured.err
    assert len(list(cache.glob("corpus-*/index/askdoc.sqlite3"))) == 1
    run = json.loads((tmp_path / "r.json").read_text())["runs"][0]
    assert run["summary"]["hit@1"] == 1.0 and run["counts"]["questions"] == 1


def test_markdown_escapes_document_text() -> None:
    record = QARecord("q|1", "Q?", ("x",))
    sentence = AnswerSentence("x | *bold* <b>", 1, 0, 5, 1, 0.9)
    answer = Answer("Q?", "Q?", True, 0.9, (sentence,), (src(1, "a.txt", (1, 1)),))
    results = (judge(record, answer, 5, {}),)
    run = ModeRun("hybrid", results, summarize(results, 5), count(results))
    text = to_markdown(EvalResult("set", "qa", "c", "i", 5, (run,)))
    assert "| answer_contains | 1.000 |" in text
    assert "q\\|1" in text and "x \\| \\*bold\\* \\<b\\>" in text


def printed(*renderables: object, width: int = 80) -> str:
    """What a terminal ``width`` columns wide shows."""
    console = Console(width=width, record=True, color_system=None, file=open(os.devnull, "w"))
    for item in renderables:
        console.print(item)
    return console.export_text()


def two_mode_result() -> EvalResult:
    """hybrid refuses the unanswerable question; lexical refuses nothing (so its refusal
    precision does not apply), and no question has expected answer phrases."""
    record = QARecord("q", "When?", (), (GoldSource.parse("corpus/x.txt:8"),))
    unanswerable = QARecord("u", "Mars?", unanswerable=True)
    sources = (src(1, "x.txt", (6, 9)),)
    sentence = AnswerSentence("Signed on June 19.", 1, 0, 5, 8, 0.9)
    found = Answer("When?", "When?", True, 0.9, (sentence,), sources)
    refused = Answer("Mars?", "Mars?", False, 0.1, (), sources, "Not found in the documents.")
    runs = []
    for mode, last in (("hybrid", refused), ("lexical", replace(found, question="Mars?"))):
        results = (judge(record, found, 5, {}), judge(unanswerable, last, 5, {}))
        runs.append(ModeRun(mode, results, summarize(results, 5), count(results)))
    return EvalResult("set", "qa", "c", "i", 5, tuple(runs))


def test_reports_leave_out_what_does_not_apply() -> None:
    """No "–" anywhere: a metric no mode measured has no row, a mode that did not measure it
    an empty cell; an unanswerable question has no rank."""
    result = two_mode_result()
    assert result.runs[1].summary["refusal_precision"] is None
    assert result.runs[0].summary["answer_contains"] is None  # no expected phrases
    shown = printed(summary_table(result), *(question_table(run, run.mode) for run in result.runs))
    markdown = to_markdown(result)
    for text in (shown, markdown):
        assert "–" not in text and "n/a" not in text
        assert "answer_contains" not in text and "refusal_precision" in text
    row = next(line for line in shown.splitlines() if "refusal_precision" in line)
    assert row.split("│")[2].strip() == "1.000" and row.split("│")[3].strip() == ""
    ranks = [line.split("│")[3].strip() for line in shown.splitlines() if line.startswith("│ u ")]
    assert ranks == ["", ""]
    old = {"hybrid": {"hit@1": 0.5, "answer_contains": 0.9}}
    changes = compare(old, replace(result, runs=result.runs[:1]))
    assert all(c.new is not None for c in changes)  # answer_contains no longer applies
    assert "–" not in printed(compare_table(changes)) and "1.000 (new)" in printed(
        compare_table(changes)
    )


def test_question_table_wraps_long_answers_at_80_columns() -> None:
    long = " ".join(f"word{i}" for i in range(60))  # ~420 characters
    record = QARecord("q-with-a-long-identifier", "Why?", (long.split()[0],))
    sentence = AnswerSentence(long, 1, 0, len(long), 1, 0.9)
    sources = (src(1, "a-rather-long-file-name-for-a-document.txt", (1, 1)),)
    results = (judge(record, Answer("Why?", "Why?", True, 0.9, (sentence,), sources), 5, {}),)
    run = ModeRun("hybrid", results, summarize(results, 5), count(results))
    shown = printed(question_table(run, "set · hybrid"), width=80)
    lines = shown.splitlines()
    assert max(len(line) for line in lines) <= 80
    cells = " ".join(line.split("│")[4].strip() for line in lines if line.count("│") == 5)
    assert long in cells and "…" not in cells  # every word, in order, none cut
    cited = "↳a-rather-long-file-name-for-a-document.txt:L1"  # folded where it must be
    assert cited in cells.replace(" ", "")


def test_threshold_parsing() -> None:
    assert parse_threshold("ndcg@10=0.5", 5).value == 0.5
    assert parse_threshold("recall@3=0.5", 3).metric == "recall@3"
    with pytest.raises(EvalError, match="unknown metric 'recall@3'"):
        parse_threshold("recall@3=0.5", 5)


# --- the shipped sample set, real model ------------------------------------------------------


@pytest.mark.model
def test_sample_set_with_the_real_model(sample_engine: Engine) -> None:
    dataset = load_qa(REPO / "eval" / "sample.jsonl")
    result = evaluate(sample_engine, dataset, ["hybrid"], 5)
    summary = result.runs[0].summary
    assert summary["hit@5"] is not None and summary["hit@5"] >= 0.8
    assert summary["mrr@10"] is not None and summary["mrr@10"] >= 0.7
    assert summary["answer_contains"] is not None and summary["answer_contains"] >= 0.6
    assert summary["citation_accuracy"] is not None and summary["citation_accuracy"] >= 0.6
    assert summary["refusal_recall"] is not None
    assert summary["latency_p95_ms"] is not None and summary["latency_p95_ms"] > 0
    assert result.runs[0].counts == {
        **result.runs[0].counts,
        "questions": 40,
        "unanswerable": 8,
        "errors": 0,
    }
    missed = check_thresholds(result, [parse_threshold("hit@1=1.01", 5)])
    assert missed and missed[0].startswith("hybrid: hit@1 = ")


@pytest.mark.model
def test_cli_threshold_exit_code_with_the_real_model(
    tmp_path: Path, real_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLE_CORPUS, corpus)
    monkeypatch.setattr(eval_cli, "make_engine", lambda s: Engine(s, real_embedder))
    argv = ["eval", str(REPO / "eval" / "sample.jsonl"), "--corpus", str(corpus)]
    argv += ["--cache", str(tmp_path / "cache"), "--limit", "8", "--summary-only"]
    assert main([*argv, "--min", "hit@1=1.01"]) == 1
    assert main([*argv, "--min", "hit@10=0.5"]) == 0
