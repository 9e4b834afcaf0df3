"""Follow-ups: only questions that cannot stand alone lean on the previous question; a chain
never grows; and a follow-up is answered exactly as the question written out in full."""

from __future__ import annotations

import pytest

from askdoc.engine import Engine
from askdoc.followup import is_follow_up, next_context, rewrite_follow_up
from askdoc.types import Answer


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        # cannot stand alone: a pronoun or a continuation, little content of its own
        ("And when was it signed?", True),
        ("and when did that happen?", True),
        ("Who signed it?", True),
        ("When did he die?", True),
        ("What is its population?", True),
        ("what about the ammunition?", True),
        ("Why did that happen?", True),
        # stands alone: the chains, which used to be glued to earlier questions
        ("Who visited Pyongyang?", False),
        ("When was the Treaty of Oakridge signed?", False),
        ("Why did North Korea send troops?", False),
        ("How many containers did North Korea deliver to Russia by sea?", False),
        ("Who built the bridge that collapsed in 1902?", False),
        ("Are there any wolves left in the Orlenn Highlands?", False),
        ("Which think tank monitors the war in Ukraine every day?", False),
    ],
)
def test_follow_up_detection(question: str, expected: bool) -> None:
    assert is_follow_up(question) is expected


def test_rewrite_uses_the_previous_question_only_for_follow_ups() -> None:
    first = "Who signed the partnership agreement?"
    assert rewrite_follow_up("And when was it signed?", first) == f"{first} And when was it signed?"
    assert rewrite_follow_up("Who visited Pyongyang?", first) == "Who visited Pyongyang?"
    assert rewrite_follow_up("And when was it signed?", None) == "And when was it signed?"


def _answer(question: str, searched: str, found: bool = True) -> Answer:
    return Answer(question, searched, found, 0.9 if found else 0.1)


def test_a_chain_never_grows_and_not_found_resets_it() -> None:
    root = "Who signed the treaty?"
    context = next_context(_answer(root, root), None)
    assert context == root
    # a follow-up leans on the root; the next follow-up leans on the same root, not on both
    second = rewrite_follow_up("And when?", context)
    context = next_context(_answer("And when?", second), context)
    assert context == root
    third = rewrite_follow_up("And where was it?", context)
    assert third == f"{root} And where was it?"
    # a standalone question becomes the new root
    context = next_context(_answer("Who visited Pyongyang?", "Who visited Pyongyang?"), context)
    assert context == "Who visited Pyongyang?"
    # "Not found" leaves nothing to lean on
    assert next_context(_answer("x y z?", "x y z?", found=False), context) is None


@pytest.mark.model
def test_standalone_question_after_an_unrelated_one_is_answered_as_alone(
    sample_engine: Engine,
) -> None:
    """The issue's chain: "Who visited Pyongyang?" after a question about artillery shells."""
    shells = "How many artillery shells could the containers hold?"
    alone = sample_engine.ask("Who visited Pyongyang?")
    after = sample_engine.ask("Who visited Pyongyang?", previous=shells)
    assert after.searched == "Who visited Pyongyang?"
    assert after.sentences == alone.sentences and after.sources == alone.sources
    assert after.found == alone.found and after.confidence == pytest.approx(alone.confidence)


@pytest.mark.model
def test_follow_up_equals_the_question_written_out(sample_engine: Engine) -> None:
    first = "Who signed the comprehensive strategic partnership agreement?"
    follow = sample_engine.ask("And when was it signed?", previous=first)
    full = sample_engine.ask(f"{first} And when was it signed?")
    assert follow.searched == full.question == f"{first} And when was it signed?"
    assert follow.question == "And when was it signed?"
    assert follow.found and follow.sentences == full.sentences and follow.sources == full.sources
    assert any("June 19" in s.text for s in follow.sentences)


def test_an_empty_follow_up_is_allowed_only_after_a_question() -> None:
    from askdoc.engine import prepare_question
    from askdoc.errors import QuestionError

    assert prepare_question("And when was that?", 100, "Who signed it?")[0] == "And when was that?"
    with pytest.raises(QuestionError):
        prepare_question("And when was that?", 100)
