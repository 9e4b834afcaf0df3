"""The real packaged model over the sample corpus: the right line is cited, verbatim."""

from __future__ import annotations

import io
import json
import sys
from dataclasses import replace

import pytest

from askdoc.cli import main
from askdoc.engine import Engine

pytestmark = pytest.mark.model

# (question in our own words, line that must be cited, phrase the answer sentence must hold)
QUESTIONS = [
    (
        "Which research institute follows the conflict every day?",
        2,
        "Institute for the Study of War",
    ),
    ("On which day did Putin and Kim sign their pact?", 8, "June 19"),
    ("What kind of agreement did the two leaders sign?", 8, "strategic partnership"),
    ("How many ammunition containers did North Korea deliver, per the US?", 9, "1,000 containers"),
    ("What confirmed the American information about the deliveries?", 9, "satellite images"),
    ("How many artillery shells could the containers hold?", 9, "4.8 million"),
    ("Who is the South Korean defense minister?", 8, "Shin Won-sik"),
    ("What killed North Korean officials near Donetsk?", 5, "missile strike"),
    ("Has Ukraine detected North Korean units operating in the country?", 3, "not detected"),
    ("How many North Korean infantrymen are training in Russia?", 4, "several thousand"),
    ("Who cited a Ukrainian military intelligence official?", 3, "intelligence official"),
    ("What do the North Korean munitions factories do for Russia?", 8, "full capacity"),
]


@pytest.mark.parametrize(("question", "line", "phrase"), QUESTIONS)
def test_answer_cites_the_right_line(
    sample_engine: Engine, question: str, line: int, phrase: str
) -> None:
    answer = sample_engine.ask(question)
    assert answer.found, f"refused: {question} ({answer.confidence:.2f})"
    cited = [s for s in answer.sentences if s.line == line]
    assert cited, f"line {line} not cited: {[s.line for s in answer.sentences]}"
    assert any(phrase.lower() in s.text.lower() for s in cited)
    for sentence in answer.sentences:
        source = answer.sources[sentence.source - 1]
        document = sample_engine.document(source.path)
        assert document is not None
        assert document.text[sentence.start : sentence.end] == sentence.text


@pytest.mark.parametrize(
    "question",
    ["What is the boiling point of water at sea level?", "Who won the 2018 FIFA World Cup?"],
)
def test_unrelated_questions_are_refused(sample_engine: Engine, question: str) -> None:
    answer = sample_engine.ask(question)
    assert not answer.found
    assert answer.sources  # still shown, as weak matches


def test_cli_ask_json(sample_engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    settings = sample_engine.settings
    code = main(
        [
            "ask",
            "When was the partnership agreement signed?",
            "--json",
            "-k",
            "3",
            "--corpus",
            str(settings.corpus),
            "--index",
            str(settings.index),
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["found"] is True
    first = data["answer"][0]
    source = data["sources"][first["source"] - 1]
    assert "June 19" in first["text"] and first["line"] == 8
    assert (
        source["text"][first["start"] - source["start"] : first["end"] - source["start"]]
        == first["text"]
    )
    assert len(data["sources"]) <= 3


def test_cli_ask_stdin_json_lines(
    sample_engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = sample_engine.settings
    monkeypatch.setattr("askdoc.engine.Embedder", lambda *_args, **_kwargs: sample_engine.embedder)
    questions = "On which day did Putin and Kim sign their pact?\nWho won the 2018 World Cup?\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(questions.encode())))
    paths = ["--corpus", str(settings.corpus), "--index", str(settings.index)]
    assert main(["ask", "-", *paths]) == 0
    signed, unrelated = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert signed["found"] is True and "June 19" in signed["answer"][0]["text"]
    assert unrelated["found"] is False and unrelated["sources"]


def test_cli_ask_text_output(sample_engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    settings = sample_engine.settings
    assert (
        main(
            [
                "ask",
                "Who is the defense minister of South Korea?",
                "--corpus",
                str(settings.corpus),
                "--index",
                str(settings.index),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "Shin Won-sik" in out and "[1]" in out
    assert f"{settings.corpus}/north-korea-russia-alliance.txt:L" in out


def test_follow_up_is_searched_with_the_previous_question(sample_engine: Engine) -> None:
    first = "Which research institute follows the conflict every day?"
    answer = sample_engine.ask("and what does its latest report say?", previous=first)
    assert answer.searched.startswith(first)
    engine = Engine(replace(sample_engine.settings), sample_engine.embedder)
    assert engine.ask("Who signed the partnership agreement?").searched == (
        "Who signed the partnership agreement?"
    )
