"""Answers a person can read at a glance: sentence lines, collapsed sources, refusals."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from askdoc.render import CLOSEST_TITLE, answer_json, answer_text, excerpt
from askdoc.types import Answer, AnswerSentence, Source

TEXT = (
    "The harbour was dredged in 1850. It silted up again within ten years.\n"
    "The mayor asked for a new pier. The pier opened on 4 May 1868, after a long delay.\n"
    "It is 300 metres long."
)
SENTENCE = "The pier opened on 4 May 1868, after a long delay."


def source(marked: bool = True) -> Source:
    start = 1000
    a = start + TEXT.index(SENTENCE)
    spans = ((a, a + len(SENTENCE)),) if marked else ()
    return Source(
        1, "port.txt", TEXT, start, start + len(TEXT), 10, 12, None, "", 0.61,
        spans[0] if spans else None, spans,
    )  # fmt: skip


def test_location_names_the_sentence_line_not_the_passage() -> None:
    assert source().location == "port.txt:L10-12"
    assert source().cited_location == "port.txt:L11"
    assert source(marked=False).cited_location == "port.txt:L10-12"


def test_excerpt_is_the_sentence_with_one_sentence_of_context() -> None:
    parts = excerpt(source())
    assert parts[0] == ("… The mayor asked for a new pier. ", False)
    assert parts[1] == (SENTENCE, True)
    assert parts[-1] == (" …", False)
    assert "dredged" not in "".join(text for text, _ in parts)
    long_context = excerpt(source(), context_chars=12)
    assert long_context[0][0].startswith("…") and len(long_context[0][0]) <= 16


def render(answer: Answer, passages: bool = False) -> str:
    console = Console(width=80, record=True, color_system=None)
    console.print(answer_text(answer, Path("corpus"), passages=passages))
    return console.export_text()


def test_answer_text_shows_the_answer_first_and_collapsed_sources() -> None:
    sentence = AnswerSentence(SENTENCE, 1, source().marked[0][0], source().marked[0][1], 11, 0.9)
    answer = Answer("When did the pier open?", "When did the pier open?", True, 0.9,
                    (sentence,), (source(),))  # fmt: skip
    text = render(answer)
    lines = text.splitlines()
    assert lines[0] == "Answer" and SENTENCE in lines[1] and lines[1].endswith("[1]")
    assert "[1] corpus/port.txt:L11  score 0.61" in text
    assert "dredged" not in text  # collapsed
    whole = render(answer, passages=True)
    assert "dredged" in whole and "  passage L10-12" in whole


def test_refusal_lists_the_closest_passages_one_line_each() -> None:
    answer = Answer("Who owns the pier?", "Who owns the pier?", False, 0.1, (), (source(),))
    lines = render(answer).splitlines()
    assert lines[0] == "Not found in the documents."
    at = lines.index(CLOSEST_TITLE)
    assert lines[at + 1].startswith("[1] corpus/port.txt:L11  The pier opened")
    assert len(lines[at + 1]) <= 80 and len(lines) == at + 2


def test_json_carries_the_cited_location_and_the_evidence() -> None:
    answer = Answer("q", "q", False, 0.1, (), (source(),), evidence={"masked": 0.123456})
    data = answer_json(answer, Path("corpus"))
    assert data["sources"][0]["cited_location"] == "corpus/port.txt:L11"
    assert data["evidence"] == {"masked": 0.1235}
