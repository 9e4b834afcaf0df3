"""Follow-up questions in a chat: which questions cannot stand alone, and what they lean on."""

from __future__ import annotations

import re

from askdoc.text import content_terms, words
from askdoc.types import Answer

_ELLIPSIS_START = re.compile(r"^\s*(and|but|also|so|then|what about|how about)\b", re.I)
_REFERRING = frozenset(
    "it its itself this these those they them their theirs he him his she her hers".split()
)
_WEAK_REFERRING = frozenset({"that", "there"})
"""Refer back only in very short questions ("Why did that happen?"); otherwise they are
usually a relative pronoun or an existential ("the river that ...", "are there ...")."""
FOLLOW_UP_MAX_TERMS = 3
"""A question with more content words than this stands alone, pronoun or not."""


def is_follow_up(question: str) -> bool:
    """A question that cannot stand alone: it refers back (a pronoun such as "it", "they",
    "that") or continues the last one ("and ...", "what about ..."), and has at most
    ``FOLLOW_UP_MAX_TERMS`` content words of its own. "Who visited Pyongyang?" stands alone;
    "And when was it signed?" does not."""
    terms = len(content_terms(question))
    if terms > FOLLOW_UP_MAX_TERMS:
        return False
    tokens = set(words(question))
    weak = terms <= 2 and bool(tokens & _WEAK_REFERRING)
    return bool(_ELLIPSIS_START.match(question)) or bool(tokens & _REFERRING) or weak


def rewrite_follow_up(question: str, previous: str | None) -> str:
    """What is searched: a follow-up joined to the previous question, else the question."""
    if previous and is_follow_up(question):
        return f"{previous} {question}"
    return question


def next_context(answer: Answer, previous: str | None) -> str | None:
    """The question a next follow-up will lean on: the question just answered when it stood
    alone, the same one as before when it was itself a follow-up (so a chain never grows past
    one question plus the follow-up), nothing after a "Not found"."""
    if not answer.found:
        return None
    return previous if answer.searched != answer.question else answer.question
