"""Sentence selection, refusal and question handling (real model where it matters)."""

from __future__ import annotations

import pytest

from askdoc.answer import AnswerParams, compose, is_statement, lexical_overlap, term_weights
from askdoc.embedder import Embedder
from askdoc.engine import Engine, prepare_question
from askdoc.errors import QuestionError
from askdoc.types import Chunk, Hit

# (question, passage, the phrase only the answering sentence holds)
CASES = [
    (
        "When does the museum open on Sundays?",
        "The museum was founded in 1902 by a local collector. Its east wing holds Roman coins. "
        "On Sundays the doors open at eleven in the morning. Entry is free for children.",
        "eleven in the morning",
    ),
    (
        "What is the boiling point of water at sea level?",
        "Water covers most of the planet's surface. At sea level, water boils at 100 degrees "
        "Celsius. Ice floats because it is less dense than liquid water.",
        "100 degrees",
    ),
    (
        "Who designed the bridge?",
        "The bridge spans four hundred metres across the estuary. It was designed by the "
        "engineer Maria Keller. Traffic crossed it for the first time in 1931.",
        "Maria Keller",
    ),
    (
        "How long does the battery last?",
        "The phone weighs 180 grams. Its battery lasts about two days of normal use. The screen "
        "is made of toughened glass.",
        "two days",
    ),
    (
        "Which river flows through the city?",
        "The city is famous for its cathedral. The river Lune flows through its centre. Its "
        "population doubled during the nineteenth century.",
        "river Lune",
    ),
    (
        "What did the committee decide about the budget?",
        "The committee met on Tuesday. Members discussed the new parking rules at length. They "
        "decided to cut the budget by ten percent. The meeting closed at nine.",
        "ten percent",
    ),
    (
        "Why was the flight delayed?",
        "Flight 212 left three hours late. The delay was caused by a storm over the Alps. "
        "Passengers received meal vouchers at the gate.",
        "storm over the Alps",
    ),
    (
        "What language is the program written in?",
        "The program reads a configuration file at start-up. It is written in Rust for speed "
        "and safety. Releases are published every month.",
        "written in Rust",
    ),
    (
        "How many people live in the village?",
        "The village lies at the foot of the mountain. About 350 people live there all year. "
        "Tourists arrive each winter for skiing.",
        "350 people",
    ),
    (
        "What does the enzyme break down?",
        "The enzyme is produced in the pancreas. It breaks down starch into simple sugars. "
        "Its activity depends on temperature.",
        "starch",
    ),
    (
        "Where was the treaty signed?",
        "The treaty ended a decade of conflict. It was signed in Vienna in the spring of 1815. "
        "Its terms were debated for years afterwards.",
        "Vienna",
    ),
]


def hit(text: str, number: int = 0) -> Hit:
    chunk = Chunk("doc.txt", number, text, 0, len(text), 1, 1)
    return Hit(chunk_id=number, chunk=chunk, score=1.0, dense_score=0.5)


@pytest.mark.model
@pytest.mark.parametrize(("question", "passage", "phrase"), CASES)
def test_the_answering_sentence_is_chosen_first(
    real_embedder: Embedder, question: str, passage: str, phrase: str
) -> None:
    vector = real_embedder.encode_query(question)
    answer = compose(
        question,
        question,
        [hit(passage)],
        vector,
        lambda texts: real_embedder.encode(list(texts)),
        lambda term: 1,
        10,
        AnswerParams(min_confidence=0.0, max_sentences=1),
    )
    assert answer.found
    assert phrase in answer.sentences[0].text
    sentence = answer.sentences[0]
    assert passage[sentence.start : sentence.end] == sentence.text


UNANSWERABLE = [
    "What is the boiling point of water at sea level?",
    "Who won the 2018 FIFA World Cup?",
    "How do I bake sourdough bread at home?",
    "Which planet in the solar system is the largest?",
    "What is the best way to learn the violin?",
    "How do I configure an nginx reverse proxy?",
]


@pytest.mark.model
@pytest.mark.parametrize("question", UNANSWERABLE)
def test_unanswerable_questions_are_refused(sample_engine: Engine, question: str) -> None:
    answer = sample_engine.ask(question)
    assert not answer.found
    assert answer.sentences == ()
    assert answer.message.startswith("Not found in the documents")
    assert answer.sources  # nearest passages still listed as weak matches


@pytest.mark.parametrize("question", ["", "   ", "?!?", "the", "...", "and or", "\x1b\x07"])
def test_empty_questions_ask_for_a_question(question: str) -> None:
    with pytest.raises(QuestionError, match="please ask a question"):
        prepare_question(question, 1000)


def test_long_question_is_cut_with_a_notice() -> None:
    question, notice = prepare_question("penguins " * 500, 1000)
    assert len(question) == 1000 and "1000" in notice


def test_rare_terms_weigh_most() -> None:
    weights = term_weights("rare common", lambda t: 1 if t == "rare" else 90, 100)
    assert weights["rare"] > weights["common"]
    assert lexical_overlap("a rare word", weights) > lexical_overlap("a common word", weights)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Assert Statement", False),
        ("**********************", False),
        ("Yes.", False),
        ("Water boils at 100 degrees.", True),
        ("Assignments to x are illegal.", True),
    ],
)
def test_titles_and_rules_are_not_answers(text: str, expected: bool) -> None:
    assert is_statement(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Treaty of Oakridge", False),  # a title line without a blank line after it
        ("The history of the river dispute", False),
        ("- flour water salt and starter", True),  # a list item can answer
        ("The treaty was signed in Velden.", True),
        ("the river dispute ended after many years of talks between the two valleys", True),
    ],
)
def test_short_lines_without_punctuation_are_titles(text: str, expected: bool) -> None:
    assert is_statement(text, whole_line=True) is expected
