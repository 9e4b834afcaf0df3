"""Sentence splitting: the spans of the sentences of a text, used to pack passages, to pool
sentence vectors, to choose answer sentences and to show them.

A newline ends a sentence only where the text's layout says so (a paragraph, a list item, a
title line); wrapped prose joins its lines. Abbreviations ("e.g.", "Dr.") do not end one.
"""

from __future__ import annotations

import re

Span = tuple[int, int]
"""(start, end) character offsets."""

_ABBREVIATIONS = frozenset(
    "e.g i.e etc vs mr mrs ms dr prof st no fig al approx cf jr sr inc ltd co corp dept est".split()
)
_SENTENCE_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s)")
_BULLET = re.compile(r"\s*(?:[-*+\u2022]\s|\d{1,3}[.)]\s|#{1,6}\s|>)")
_LINE_END_PUNCT = re.compile(r"[.!?:;\u2026][\"'\u201d\u2019)\]]*\s*$")


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentence spans (absolute offsets) in ``text[start:end]``, whitespace trimmed.

    A newline ends a sentence when it ends a paragraph, a line that ends in punctuation, a short
    line (a title), or precedes a list item, heading, quote or indented (code) line; other newlines
    are wrapped prose and join lines. Every non-blank character lands in exactly one span.
    """
    stop = len(text) if end is None else end
    spans: list[Span] = []
    for block_start, block_end in _blocks(text, start, stop):
        spans.extend(_sentences_in_block(text, block_start, block_end))
    return spans


def _blocks(text: str, start: int, stop: int) -> list[Span]:
    """Runs of lines that belong together (wrapped prose joins; structure breaks)."""
    blocks: list[Span] = []
    block_start = start
    pos = start
    while pos < stop:
        newline = text.find("\n", pos, stop)
        if newline == -1:
            break
        line = text[pos:newline]
        next_end = text.find("\n", newline + 1, stop)
        next_line = text[newline + 1 : stop if next_end == -1 else next_end]
        if _breaks_after(line, next_line):
            blocks.append((block_start, newline))
            block_start = newline + 1
        pos = newline + 1
    blocks.append((block_start, stop))
    return blocks


def _breaks_after(line: str, next_line: str) -> bool:
    stripped = line.strip()
    if not stripped or not next_line.strip():
        return True
    if len(stripped) < 40 or _LINE_END_PUNCT.search(line):
        return True
    if _BULLET.match(next_line) or next_line.startswith(("    ", "\t")):
        return True
    return line.startswith(("    ", "\t")) or bool(_BULLET.match(line) and "#" in line[:7])


def _sentences_in_block(text: str, start: int, stop: int) -> list[Span]:
    spans: list[Span] = []
    begin = start
    for match in _SENTENCE_END.finditer(text, start, stop):
        cut = match.end()
        if _is_abbreviation(text, begin, match.start()) or not _starts_sentence(text, cut, stop):
            continue
        spans.extend(_trimmed(text, begin, cut))
        begin = cut
    spans.extend(_trimmed(text, begin, stop))
    return spans


def _is_abbreviation(text: str, begin: int, dot: int) -> bool:
    if text[dot] != ".":
        return False
    word_start = dot
    while word_start > begin and not text[word_start - 1].isspace():
        word_start -= 1
    word = text[word_start:dot].lower().strip("(\"'")
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()) or "." in word


def _starts_sentence(text: str, cut: int, stop: int) -> bool:
    nxt = cut
    while nxt < stop and text[nxt].isspace():
        nxt += 1
    if nxt >= stop:
        return True
    char = text[nxt]
    return char.isupper() or char.isdigit() or char in "\"'\u201c\u2018([*-\u2022#"


def _trimmed(text: str, begin: int, stop: int) -> list[Span]:
    while begin < stop and text[begin].isspace():
        begin += 1
    while stop > begin and text[stop - 1].isspace():
        stop -= 1
    return [(begin, stop)] if begin < stop else []
