"""Counting word-pieces to size passages: a model's ``tokenizer.json``, or a named rule.

Chunking measures passages in the model's own word-pieces (``TokenCounter.of_model``: the
model folder's ``tokenizer.json`` through the light ``tokenizers`` library, no special tokens, no
truncation). A counter is described by a small JSON value, so the isolated read worker gets the
same one as the build without importing the embedder. A named rule (``RULES``) needs no model
files: a deterministic stand-in for tests whose embedder is fake.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from askdoc.errors import ModelError

TOKENIZER_FILE = "tokenizer.json"

_PIECES = re.compile(r"\w{1,8}|[^\w\s]")


def _word_pieces(text: str) -> int:
    """Runs of up to 8 word characters and single punctuation marks: within ~3 pieces of the
    model's count for a typical paragraph (a rough stand-in, not the model's tokenizer)."""
    return len(_PIECES.findall(text))


RULES: dict[str, Callable[[str], int]] = {"word-pieces": _word_pieces}
"""Deterministic counters by name, for embedders without a model folder (tests)."""


@dataclass(frozen=True)
class TokenCounter:
    """How texts are measured: a ``tokenizer.json`` file (``file``) or a rule of ``RULES``
    (``rule``); exactly one of them."""

    file: str = ""
    rule: str = ""

    def __post_init__(self) -> None:
        if bool(self.file) == bool(self.rule):
            raise ValueError("a token counter has either a tokenizer file or a rule")
        if self.rule and self.rule not in RULES:
            raise ValueError(f"unknown token counting rule {self.rule!r}")

    @classmethod
    def of_model(cls, folder: Path) -> TokenCounter:
        """The word-pieces of the model in ``folder``, as the model sees them."""
        return cls(file=str(folder / TOKENIZER_FILE))

    def to_json(self) -> dict[str, str]:
        return {"file": self.file, "rule": self.rule}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> TokenCounter:
        return cls(file=str(raw.get("file", "")), rule=str(raw.get("rule", "")))

    @cached_property
    def tokenizer(self) -> Any:
        """The loaded ``tokenizers.Tokenizer`` (no truncation, no padding); ModelError when
        there is no file."""
        from tokenizers import Tokenizer

        file = Path(self.file)
        if not self.file or not file.is_file():
            raise ModelError(f"no {TOKENIZER_FILE} in {file.parent}")
        tokenizer = Tokenizer.from_file(str(file))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer

    def count(self, texts: Sequence[str]) -> list[int]:
        """Word-pieces of each text, without special tokens and without truncation."""
        if self.rule:
            return [RULES[self.rule](text) for text in texts]
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encodings]
