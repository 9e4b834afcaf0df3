"""Generated text for the benchmarks: documents, passages and questions, deterministic by seed.

The words are real English technical prose: sentences from the docstrings of the Python standard
library and from ``pydoc_data.topics`` (both ship with CPython). A generated document takes a run
of sentences from one source (so it stays on one topic), mixes in a few sentences from other
sources, adds headings and one made-up fact ("The access code of Project Velorin is 48213.") so
exact-term questions have a single right answer. Nothing is read from the network or the repo.
"""

from __future__ import annotations

import ast
import os
import random
import re
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_SYLLABLES = "ka lo mi ren tar vel sor in dru pa zen qui bor sel ma thi ro gan lu fe".split()
_NOUNS = "project vessel archive station treaty council module survey bridge reactor".split()
_ATTRS = "access code|serial number|launch year|budget|room number|batch size".split("|")


@dataclass(frozen=True)
class Source:
    """One topic: a stdlib module's docstrings or one pydoc topic, as clean sentences."""

    name: str
    sentences: tuple[str, ...]


@dataclass(frozen=True)
class GeneratedDoc:
    """A generated document, the made-up fact it states, and a question that fact answers."""

    name: str
    text: str
    fact: str
    question: str


def _clean_sentences(block: str) -> list[str]:
    """Prose sentences of a docstring or topic: code, doctests and lists are left out."""
    out: list[str] = []
    for para in re.split(r"\n\s*\n", block):
        lines = para.splitlines()
        if not lines or any(ln.startswith((" ", "\t", ">>>", "...")) for ln in lines):
            continue
        text = " ".join(ln.strip() for ln in lines)
        for sentence in _SENTENCE_END.split(text):
            words = sentence.split()
            letters = sum(ch.isalpha() or ch == " " for ch in sentence)
            if 6 <= len(words) <= 45 and letters >= 0.85 * len(sentence) and sentence[-1] in ".?!":
                out.append(sentence)
    return out


@lru_cache(maxsize=1)
def sources() -> tuple[Source, ...]:
    """Every topic with at least 6 prose sentences, in a stable order."""
    found: list[Source] = []
    from pydoc_data.topics import topics

    for name in sorted(topics):
        sents = _clean_sentences(topics[name])
        if len(sents) >= 6:
            found.append(Source(f"topic {name}", tuple(sents)))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.glob("*.py")) + sorted(stdlib.glob("*/*.py")):
        if any(part in {"test", "tests", "idlelib", "site-packages"} for part in path.parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError, ValueError):
            continue
        module_sentences: list[str] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc:
                    module_sentences.extend(_clean_sentences(doc))
        unique = tuple(dict.fromkeys(module_sentences))
        if len(unique) >= 6:
            rel = path.relative_to(stdlib).with_suffix("")
            found.append(Source(f"module {'.'.join(rel.parts)}", unique))
    return tuple(found)


def _name(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


@lru_cache(maxsize=1)
def _weights() -> list[int]:
    """Cumulative sentence counts: a topic is picked in proportion to its size."""
    total, out = 0, []
    for source in sources():
        total += len(source.sentences)
        out.append(total)
    return out


def _pick(rng: random.Random) -> Source:
    return rng.choices(sources(), cum_weights=_weights())[0]


def _run(rng: random.Random, source: Source, count: int) -> list[str]:
    """Up to ``count`` sentences in order from a random start of ``source`` (no wrapping),
    about 1 in 8 replaced by a sentence of another topic."""
    count = min(count, len(source.sentences))
    start = rng.randrange(len(source.sentences) - count + 1)
    out = []
    for i in range(count):
        if rng.random() < 0.125:
            out.append(rng.choice(_pick(rng).sentences))
        else:
            out.append(source.sentences[start + i])
    return out


def generate_documents(count: int, words: int, seed: int = 0) -> list[GeneratedDoc]:
    """``count`` markdown documents of about ``words`` words (±50%) each."""
    rng = random.Random(seed)
    docs: list[GeneratedDoc] = []
    for number in range(count):
        source = _pick(rng)
        target = int(words * rng.uniform(0.5, 1.5))
        name, noun, attr = _name(rng), rng.choice(_NOUNS), rng.choice(_ATTRS)
        value = str(rng.randint(1000, 99999))
        fact = f"The {attr} of the {noun} {name} is {value}."
        lines = [f"# {source.name.split(' ', 1)[1]} notes {number}", ""]
        sentences = _run(rng, source, max(4, target // 17))
        while sum(len(x.split()) for x in sentences) < target:  # small topic: continue elsewhere
            sentences += _run(rng, _pick(rng), max(4, target // 17))
        sentences.insert(rng.randrange(len(sentences) + 1), fact)
        section = 0
        while sentences:
            if section and rng.random() < 0.3:
                lines += [f"## Part {section}", ""]
            take = rng.randint(2, 6)
            lines += [" ".join(sentences[:take]), ""]
            sentences = sentences[take:]
            section += 1
        docs.append(
            GeneratedDoc(
                name=f"doc{number:05d}.md",
                text="\n".join(lines),
                fact=fact,
                question=f"What is the {attr} of the {noun} {name}?",
            )
        )
    return docs


def write_corpus(folder: Path, docs: list[GeneratedDoc]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for doc in docs:
        (folder / doc.name).write_text(doc.text, encoding="utf-8")


def generate_passages(count: int, seed: int = 0, words: int = 140) -> list[str]:
    """``count`` distinct chunk-sized passages (about ``words`` words) of topical prose."""
    rng = random.Random(seed)
    out: dict[str, None] = {}
    while len(out) < count:
        sentences = _run(rng, _pick(rng), 40)
        text: list[str] = []
        total = 0
        for sentence in sentences:
            text.append(sentence)
            total += len(sentence.split())
            if total >= words * rng.uniform(0.7, 1.15):
                break
        out.setdefault(" ".join(text), None)
    return list(out)


def questions_for(passages: list[str], count: int, seed: int = 1) -> list[str]:
    """Natural-ish questions, each built from a sentence of a random passage."""
    rng = random.Random(seed)
    starts = ("What does it mean that", "How", "Why", "When", "Explain how", "Is it true that")
    out: list[str] = []
    while len(out) < count:
        sentence = rng.choice(_SENTENCE_END.split(rng.choice(passages)))
        words = sentence.rstrip(".!?").split()
        if len(words) < 6:
            continue
        begin = rng.randrange(0, max(1, len(words) - 10))
        piece = " ".join(words[begin : begin + rng.randint(5, 10)])
        out.append(f"{rng.choice(starts)} {piece[0].lower()}{piece[1:]}?")
    return out


def cache_dir() -> Path:
    """Where benchmark caches live (outside the repo): $ASKDOC_BENCH_CACHE or ~/.cache."""
    base = os.environ.get("ASKDOC_BENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "askdoc-bench"
    )
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path
