"""``askdoc ask -`` and ``--questions FILE``: one JSON object per question line, written as soon
as it is answered; a failing question does not stop the others."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from askdoc.cli import main
from askdoc.config import Settings
from askdoc.engine import Engine
from askdoc.render import answer_json
from tests.conftest import REPO, FakeEmbedder

QUESTIONS = [
    "How many containers of ammunition did North Korea deliver?",
    "",
    "?!?",
    "Who is the South Korean defense minister?",
]
"""Two questions, a blank line (skipped) and a line with nothing to search for (an error)."""


@pytest.fixture
def built(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The sample corpus indexed with the fake embedder, which every Engine then gets."""
    monkeypatch.setattr("askdoc.engine.Embedder", lambda *_args, **_kwargs: FakeEmbedder())
    Engine(settings).build()
    return settings


def paths(settings: Settings) -> list[str]:
    return ["--corpus", str(settings.corpus), "--index", str(settings.index)]


def feed(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode("utf-8"))))


def records(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


def test_stdin_questions_give_one_json_line_each(
    built: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    feed(monkeypatch, "\n".join(QUESTIONS) + "\n")
    code = main(["ask", "-", "-k", "2", *paths(built)])
    captured = capsys.readouterr()
    assert code == 1  # one question failed
    assert captured.err == 'askdoc: 1 of 3 questions failed (see their "error")\n'
    first, failed, last = records(captured.out)
    assert first["question"] == QUESTIONS[0] and "error" not in first
    assert len(first["sources"]) <= 2  # type: ignore[arg-type]
    assert failed == {
        "version": 1,
        "question": "?!?",
        "error": "please ask a question: there is nothing in it to search for",
    }
    assert last["question"] == QUESTIONS[3] and "error" not in last


def test_each_line_is_the_ask_json_object(
    built: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    question = QUESTIONS[3]
    feed(monkeypatch, question + "\r\n")
    assert main(["ask", "-", *paths(built)]) == 0
    (line,) = records(capsys.readouterr().out)
    assert main(["ask", question, "--json", *paths(built)]) == 0
    single = json.loads(capsys.readouterr().out)
    line.pop("timings_ms")
    single.pop("timings_ms")
    assert line == single


def test_questions_file_matches_stdin(
    built: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    text = "\n".join(QUESTIONS)  # no final newline: the last line still counts
    (tmp_path / "q.txt").write_text(text, encoding="utf-8")
    main(["ask", "--questions", str(tmp_path / "q.txt"), *paths(built)])
    from_file = records(capsys.readouterr().out)
    feed(monkeypatch, text)
    main(["ask", "-", *paths(built)])
    from_stdin = records(capsys.readouterr().out)
    for record in from_file + from_stdin:
        record.pop("timings_ms", None)
    assert from_file == from_stdin and len(from_file) == 3


def test_undecodable_bytes_do_not_stop_the_run(
    built: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = b"containers \xff\xfe delivered?\nWho is the defense minister?\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    assert main(["ask", "-", *paths(built)]) == 0
    first, second = records(capsys.readouterr().out)
    assert first["question"] == "containers \ufffd\ufffd delivered?"
    assert "error" not in second


def test_missing_index_stops_before_reading(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("askdoc.engine.Embedder", lambda *_args, **_kwargs: FakeEmbedder())
    feed(monkeypatch, "Who signed the pact?\n")
    assert main(["ask", "-", *paths(settings)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("askdoc: no index in ") and captured.err.count("\n") == 1


def test_unreadable_questions_file(
    built: Settings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["ask", "--questions", str(tmp_path / "none.txt"), *paths(built)]) == 1
    err = capsys.readouterr().err
    missing = tmp_path / "none.txt"
    assert err == f"askdoc: cannot read questions from {missing}: No such file or directory\n"


@pytest.mark.parametrize("argv", [["ask"], ["ask", "q", "--questions", "f.txt"]])
def test_ask_needs_exactly_one_source_of_questions(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert 'ask needs a question, "-" for questions on stdin' in capsys.readouterr().err


RUNNER = """
import sys
sys.path[:0] = [{repo!r}, {src!r}]
import askdoc.engine
from tests.conftest import FakeEmbedder
askdoc.engine.Embedder = lambda *_args, **_kwargs: FakeEmbedder()
from askdoc.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def test_answers_stream_while_stdin_stays_open(built: Settings) -> None:
    """An editor keeps one process: it writes a question and reads the answer before the next."""
    code = RUNNER.format(repo=str(REPO), src=str(REPO / "src"))
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "ask", "-", *paths(built)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.stdin is not None and proc.stdout is not None
    killer = threading.Timer(120, proc.kill)  # a hang fails the test instead of blocking it
    killer.start()
    try:
        answers = []
        for question in (QUESTIONS[0], QUESTIONS[3]):
            proc.stdin.write(question.encode() + b"\n")
            proc.stdin.flush()
            answers.append(json.loads(proc.stdout.readline()))  # stdin is still open
        proc.stdin.close()
        assert proc.wait() == 0
    finally:
        killer.cancel()
    assert [a["question"] for a in answers] == [QUESTIONS[0], QUESTIONS[3]]


def test_same_answers_as_the_engine(built: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    engine = Engine(built, FakeEmbedder())
    expected = [answer_json(engine.ask(q), built.corpus) for q in (QUESTIONS[0], QUESTIONS[3])]
    questions = Path(built.index.parent / "q.txt")
    questions.write_text(f"{QUESTIONS[0]}\n{QUESTIONS[3]}\n", encoding="utf-8")
    assert main(["ask", "--questions", str(questions), *paths(built)]) == 0
    got = records(capsys.readouterr().out)
    for record in expected + got:
        record.pop("timings_ms")
    assert got == expected
