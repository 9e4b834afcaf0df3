"""The sentence checker: pure helpers, verdicts on hand-made answers, and the labelled set."""

from __future__ import annotations

from pathlib import Path

import pytest

from askdoc.evaluation.grounding import load_labelled, paragraph_sources, run
from askdoc.grounding import (
    check,
    is_claim,
    key_terms,
    markers,
    normal,
    present,
    split_answer,
    strip_markers,
)
from askdoc.types import Source

REPO = Path(__file__).resolve().parents[1]
CORPUS_FILE = REPO / "corpus" / "north-korea-russia-alliance.txt"
LABELLED = REPO / "eval" / "grounding.jsonl"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("It was signed [8].", [8]),
        ("Two facts [1, 3] and [3][2].", [1, 3, 2]),
        ("No marker here.", []),
        ("A list [a] is not a marker.", []),
    ],
)
def test_markers(text: str, expected: list[int]) -> None:
    assert markers(text) == expected


def test_split_answer_keeps_a_trailing_marker_with_its_sentence_and_drops_list_numbers() -> None:
    text = "ISW monitors the war daily. [2] It is a U.S. think tank [2].\n1. Kim leads.\n2."
    parts = [text[a:b] for a, b in split_answer(text)]
    assert parts == [
        "ISW monitors the war daily. [2]",
        "It is a U.S. think tank [2].",
        "Kim leads.",
    ]
    assert strip_markers(parts[0]) == "ISW monitors the war daily."


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("1,000", "1000"),
        ("five", "5"),
        ("Korea's", "korea"),
        ("Russia’s", "russia"),
        ("4.8", "4.8"),
    ],
)
def test_normal(token: str, expected: str) -> None:
    assert normal(token) == expected


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("The warranty lasts 4 weeks.", ["4"]),
        ("Putin met Kim Jong Un in June.", ["Kim", "Jong", "Un", "June"]),
        ("Besides the front, troops went north.", []),
        ("NATO said nothing.", ["NATO"]),
        ("The two countries signed it.", []),
        ("Seven thousand soldiers went.", ["Seven", "thousand"]),
    ],
)
def test_key_terms(sentence: str, expected: list[str]) -> None:
    assert key_terms(sentence) == expected


def test_present_matches_a_name_inside_a_longer_word() -> None:
    assert present("Korea", {"korean", "troop"})
    assert not present("Korea", {"troop"})
    assert not present("10", {"10000"})


@pytest.mark.parametrize(
    ("claim", "expected"),
    [
        ("The answer is:", False),
        ("What is the main reason?", False),
        ("Ukraine", False),
        ("1", True),
        ("Troops are training in Russia.", True),
    ],
)
def test_is_claim(claim: str, expected: bool) -> None:
    assert is_claim(claim, key_terms(claim)) is expected


def sources() -> list[Source]:
    return paragraph_sources(CORPUS_FILE, "north-korea-russia-alliance.txt")


def test_paragraph_sources_are_exact_spans_of_the_file() -> None:
    text = CORPUS_FILE.read_text(encoding="utf-8")
    found = sources()
    assert len(found) == 9
    for source in found:
        assert text[source.start : source.end] == source.text
        assert source.line_start == source.number


def test_a_quoted_sentence_is_supported_with_its_exact_span(fake_embedder) -> None:  # type: ignore[no-untyped-def]
    known = sources()
    text = CORPUS_FILE.read_text(encoding="utf-8")
    sentence = "Kim Jong Un stands alongside Vladimir Putin in the war in Ukraine."
    (result,) = check(f"{sentence} [1]", known, fake_embedder.encode)
    assert result.verdict == "supported" and result.ok
    support = result.support
    assert support is not None and support.source == 1 and support.line == 1
    assert text[support.start : support.end] == support.text == sentence


def test_wrong_numbers_and_citations_are_flagged(fake_embedder) -> None:  # type: ignore[no-untyped-def]
    answer = (
        "North Korea has delivered more than 5,000 containers of ammunition to Russia [9]. "
        "Kim Jong Un stands alongside Vladimir Putin in the war in Ukraine [4]. "
        "Kim Jong Un stands alongside Vladimir Putin in the war in Ukraine [12]."
    )
    wrong_number, wrong_source, no_source = check(answer, sources(), fake_embedder.encode)
    assert wrong_number.verdict == "unsupported" and wrong_number.missing == ("5,000",)
    assert '"5,000" in no cited passage' in wrong_number.problems()
    assert wrong_source.verdict == "miscited" and wrong_source.wrong_source == (4,)
    assert no_source.verdict == "miscited" and no_source.no_source == (12,)
    assert "[12] cites no source" in no_source.problems()


def test_an_invented_fact_is_unsupported(fake_embedder) -> None:  # type: ignore[no-untyped-def]
    (result,) = check(
        "The 2018 FIFA World Cup was won by Germany.", sources(), fake_embedder.encode
    )
    assert result.verdict == "unsupported"
    assert set(result.missing) == {"2018", "FIFA", "World", "Cup", "Germany"}


def test_words_about_the_answer_are_not_claims(fake_embedder) -> None:  # type: ignore[no-untyped-def]
    checks = check("The answer is: [2]. Question: where?", sources(), fake_embedder.encode)
    assert [c.claim for c in checks] == [False, False]
    assert all(c.ok for c in checks)


@pytest.mark.model
def test_labelled_set_flags_unsupported_and_passes_supported(real_embedder) -> None:  # type: ignore[no-untyped-def]
    """eval/grounding.jsonl: 93 hand-labelled sentences, 45 of them real SmolLM2 outputs."""
    rows = load_labelled(LABELLED)
    assert len(rows) >= 60
    assert {r.label for r in rows} == {
        "supported",
        "unsupported",
        "wrong_number",
        "wrong_citation",
    }
    assert sum(r.origin.startswith("smollm2") for r in rows) >= 30
    report = run(rows, sources(), real_embedder.encode)
    assert report.flag_rate >= 0.9, report.flag_rate
    assert report.pass_rate >= 0.9, report.pass_rate


def test_names_and_numbers_of_the_question_or_a_heading_are_not_inventions(fake_embedder) -> None:  # type: ignore[no-untyped-def]
    text = "Operating without a licence was punishable by a fine of up to 500 crowns."
    act = Source(1, "act.txt", text, 0, len(text), 7, 7, None, "Wireless Telegraphy Act 1912", 0.5)
    claim = (
        "Under Act No. 9 of 1912, operating without a licence was punishable by a fine of up to "
        "500 crowns."
    )
    (alone,) = check(claim, [act], fake_embedder.encode)
    assert alone.missing == ("9",)  # "1912" is in the heading the model was shown
    question = (
        "What was the penalty under Act No. 9 of 1912 for running a radio set without permission?"
    )
    (asked,) = check(claim, [act], fake_embedder.encode, question=question)
    assert asked.missing == () and asked.verdict == "supported"
    (invented,) = check(claim.replace("500", "700"), [act], fake_embedder.encode, question=question)
    assert invented.missing == ("700",) and invented.verdict == "unsupported"
