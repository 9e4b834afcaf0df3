"""Generated answers: the prompt built from an answer's numbered sources, the model's reply
streamed through ``llm_client``, and every sentence of it checked by ``grounding``."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from askdoc.config import Settings
from askdoc.errors import LLMError
from askdoc.grounding import DEFAULT_PARAMS, EmbedFn, GroundingParams, SentenceCheck, check
from askdoc.llm_client import Cancel, ChatClient, Completion, LLMConfig, Message
from askdoc.text import clean_text
from askdoc.types import Answer, Source

if TYPE_CHECKING:
    from askdoc.engine import Engine

REFUSAL = "Not in the documents."
"""The exact phrase the model is asked to write when the passages do not answer."""
SYSTEM = (
    "You answer questions using only the numbered passages below. "
    "Write a short answer: one to three sentences. "
    "End each sentence with the number of the passage it comes from, like [1]. "
    f"If the passages do not contain the answer, write exactly: {REFUSAL}"
)
PASSAGE_CHARS = 1500
"""Longest passage text put in the prompt."""
NO_MODEL = (
    "no language model is configured (set url in the [llm] table of askdoc.toml, "
    "ASKDOC_LLM_URL or --llm-url)"
)

StoredFn = Callable[[Sequence[Source]], Sequence[Mapping[tuple[int, int], np.ndarray]]]


@dataclass(frozen=True)
class GeneratedAnswer:
    """A model's answer to a question, checked sentence by sentence against the extractive
    answer's sources (which it was given, numbered the same way)."""

    answer: Answer
    """The extractive answer: its sources are the [n] of the generated text."""
    text: str = ""
    """What the model wrote (control characters removed)."""
    model: str = ""
    checks: tuple[SentenceCheck, ...] = ()
    refused: bool = False
    """The model wrote the "not in the documents" phrase."""
    cancelled: bool = False
    error: str = ""
    """Why there is no generated answer (then ``answer`` alone is the reply)."""
    tokens: int = 0
    first_token_s: float = 0.0
    seconds: float = 0.0
    tokens_per_s: float = 0.0

    @property
    def ok(self) -> bool:
        """The model answered (possibly by refusing)."""
        return not self.error and not self.cancelled

    @property
    def answered_anyway(self) -> bool:
        """askdoc found no answer in the documents, but the model wrote one."""
        return self.ok and not self.answer.found and not self.refused and bool(self.claims)

    @property
    def claims(self) -> tuple[SentenceCheck, ...]:
        return tuple(c for c in self.checks if c.claim)

    @property
    def unsupported(self) -> int:
        return sum(not c.ok for c in self.claims)

    def notes(self) -> list[str]:
        """What the reader should know beyond the per-sentence verdicts."""
        out = []
        if self.error:
            out.append(f"{self.error}; answered from the documents")
        if self.cancelled:
            out.append("generation stopped")
        if self.answered_anyway:
            out.append(
                "askdoc found no answer in the documents, but the model answered anyway: "
                "check it against the sources"
            )
        if self.refused and self.answer.found:
            out.append("the model found no answer, though askdoc quoted one from the documents")
        return out


def client_for(settings: Settings) -> ChatClient:
    """The chat client of the ``llm_*`` settings; ``LLMError`` when none is configured."""
    if not settings.llm_url.strip():
        raise LLMError(NO_MODEL)
    return ChatClient(
        LLMConfig(
            settings.llm_url,
            settings.llm_model,
            settings.llm_api_key,
            settings.llm_timeout,
            settings.llm_max_tokens,
        )
    )


def passage_line(source: Source) -> str:
    text = " ".join(clean_text(source.text).split())[:PASSAGE_CHARS]
    heading = " ".join(clean_text(source.heading).split())
    return f"[{source.number}] {heading + ': ' if heading else ''}{text}"


def build_messages(question: str, sources: Sequence[Source]) -> list[Message]:
    """The chat messages: instructions, then the passages numbered [1]..[n] (first, so that a
    server caching the prompt's prefix reuses them for the next question), then the question."""
    passages = "\n\n".join(passage_line(s) for s in sources)
    user = f"Passages:\n\n{passages}\n\nQuestion: {' '.join(question.split())}"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def is_refusal(text: str) -> bool:
    """The reply says the passages do not answer (the asked-for phrase, loosely matched)."""
    flat = " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())
    return "not in the documents" in flat or "not in the passages" in flat


def generate(
    answer: Answer,
    client: ChatClient,
    embed: EmbedFn,
    stored: StoredFn | None = None,
    on_text: Callable[[str], None] | None = None,
    cancel: Cancel | None = None,
    params: GroundingParams = DEFAULT_PARAMS,
) -> GeneratedAnswer:
    """Ask the model about ``answer``'s question with its sources, then check the reply. A
    failing server gives a GeneratedAnswer with ``error`` set (never raises ``LLMError``)."""
    messages = build_messages(answer.searched or answer.question, answer.sources)
    try:
        completion = client.complete(messages, on_text, cancel)
    except LLMError as exc:
        return GeneratedAnswer(answer, error=str(exc))
    return checked(answer, completion, embed, stored, params)


def checked(
    answer: Answer,
    completion: Completion,
    embed: EmbedFn,
    stored: StoredFn | None = None,
    params: GroundingParams = DEFAULT_PARAMS,
) -> GeneratedAnswer:
    """The GeneratedAnswer of a finished completion: refusal recognised, sentences checked."""
    text = clean_text(completion.text).strip()
    refused = is_refusal(text)
    checks: tuple[SentenceCheck, ...] = ()
    if text and not completion.cancelled:
        vectors = stored(answer.sources) if stored is not None else ()
        question = answer.searched or answer.question
        checks = check(text, answer.sources, embed, vectors, params, question)
        if refused:
            checks = tuple(c for c in checks if not is_refusal(c.text))
    return GeneratedAnswer(
        answer,
        text,
        completion.model,
        checks,
        refused,
        completion.cancelled,
        "",
        completion.tokens,
        completion.first_token_s,
        completion.seconds,
        completion.tokens_per_s,
    )


def generate_with(
    engine: Engine,
    answer: Answer,
    on_text: Callable[[str], None] | None = None,
    cancel: Cancel | None = None,
) -> GeneratedAnswer:
    """``generate`` with the engine's settings, model and stored sentence vectors. Without a
    configured server, ``error`` says so."""
    try:
        client = client_for(engine.settings)
    except LLMError as exc:
        return GeneratedAnswer(answer, error=str(exc))
    return generate(
        answer,
        client,
        lambda texts: engine.embedder.encode(list(texts), batch_size=64),
        engine.sentence_vectors,
        on_text,
        cancel,
    )
