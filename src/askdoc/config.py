"""One Settings object: defaults < ``askdoc.toml`` < ``ASKDOC_*`` environment < flags."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from askdoc.errors import ConfigError

MODES = ("hybrid", "dense", "lexical")
REFUSAL_NUMBERS = 11
"""refusal_weights: one per ``refusal.FEATURES`` (10), then the bias."""


@dataclass(frozen=True)
class Settings:
    """Every setting askdoc reads; each can be set in askdoc.toml, as ASKDOC_<NAME>, or by flag."""

    corpus: Path = Path("corpus")
    """Folder of documents to index (recursively)."""
    index: Path = Path("index")
    """Folder holding the index (SQLite database, FAISS file, manifest)."""
    model: str = ""
    """Folder of a sentence-transformers model; empty means the packaged all-MiniLM-L6-v2."""
    max_file_mb: float = 50.0
    """Files larger than this are skipped with a reason."""
    file_timeout: float = 30.0
    """Seconds one file may take to be read, parsed and chunked before it is skipped."""
    chunk_tokens: int = 200
    """Target size of a passage in word-pieces (never above the model's own limit)."""
    chunk_overlap: int = 40
    """Word-pieces of trailing context repeated at the start of the next passage."""
    batch_size: int = 32
    """Passages per embedding batch when indexing."""
    index_threads: int = 1
    """torch threads while indexing; 0 means all cores. 1 was fastest on shared 2-core machines
    (docs/performance.md); use 0 on an idle machine."""
    top_k: int = 5
    """Passages retrieved and shown as sources."""
    mode: str = "hybrid"
    """Retrieval mode: hybrid, dense or lexical."""
    answer_sentences: int = 3
    """Most sentences in an answer."""
    min_confidence: float = 0.486
    """Refuse ("Not found in the documents") when the probability that the documents answer the
    question is below this (0-1; `askdoc eval FILE --calibrate` fits it to your questions)."""
    refusal_weights: tuple[float, ...] = ()
    """The refusal model's weights, one per evidence feature (``refusal.FEATURES``), then the
    bias (docs/evaluation.md). Empty: the shipped weights. Written by `askdoc eval --calibrate`."""
    max_question_chars: int = 1000
    """Longer questions are cut to this length (with a notice)."""
    exact_below: int = 50_000
    """Below this many vectors the FAISS index is exact (flat, ~5 ms a query at 50k here); from
    it on, approximate (IVF-SQ8: recall@10 ~0.97, <1 ms at 100k). See docs/performance.md."""
    llm_url: str = ""
    """Base URL of an OpenAI-compatible chat-completions server for generated answers
    (``askdoc ask --generate``), e.g. http://127.0.0.1:8080/v1; empty: answers are quoted only.
    In askdoc.toml these five are the ``[llm]`` table: url, model, api_key, timeout, max_tokens."""
    llm_model: str = ""
    """Model name to ask for; empty: the first model the server lists."""
    llm_api_key: str = ""
    """Bearer token for the server, if it needs one (better set as ASKDOC_LLM_API_KEY)."""
    llm_timeout: float = 60.0
    """Seconds to wait for the server to connect, to send its first token, and between tokens."""
    llm_max_tokens: int = 256
    """Most tokens the model may write for one answer."""
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)
    """Where the settings came from (for `askdoc status`)."""

    def with_overrides(self, **values: Any) -> Settings:
        """A copy with the given non-None values applied (and validated)."""
        clean = {k: _coerce(k, v) for k, v in values.items() if v is not None}
        return _validate(replace(self, **clean))

    @property
    def db_path(self) -> Path:
        return self.index / "askdoc.sqlite3"


_FIELD_TYPES = {f.name: f.type for f in fields(Settings) if f.name != "extra"}


def _coerce(name: str, value: Any) -> Any:
    kind = _FIELD_TYPES.get(name)
    if kind is None:
        raise ConfigError(f"unknown setting {name!r}; known settings: {', '.join(_FIELD_TYPES)}")
    try:
        if kind == "Path":
            return Path(os.path.expanduser(str(value)))
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "tuple[float, ...]":
            items = value.split(",") if isinstance(value, str) else value
            return tuple(float(v) for v in items if str(v).strip())
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r} has an invalid value {value!r}: {exc}") from None


def _validate(settings: Settings) -> Settings:
    if settings.mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, not {settings.mode!r}")
    for name in ("chunk_tokens", "top_k", "batch_size", "answer_sentences", "max_question_chars"):
        if getattr(settings, name) < 1:
            raise ConfigError(f"setting {name!r} must be at least 1")
    if settings.chunk_overlap < 0 or settings.chunk_overlap >= settings.chunk_tokens:
        raise ConfigError("chunk_overlap must be between 0 and chunk_tokens - 1")
    if not 0.0 <= settings.min_confidence <= 1.0:
        raise ConfigError(f"min_confidence must be between 0 and 1, not {settings.min_confidence}")
    if settings.refusal_weights and len(settings.refusal_weights) != REFUSAL_NUMBERS:
        raise ConfigError(
            f"refusal_weights must be {REFUSAL_NUMBERS} numbers (one weight per evidence "
            "feature, then the bias): write them with `askdoc eval FILE --calibrate`"
        )
    if settings.llm_timeout <= 0 or settings.llm_max_tokens < 1:
        raise ConfigError("llm timeout must be positive and llm max_tokens at least 1")
    if settings.max_file_mb <= 0 or settings.file_timeout <= 0:
        raise ConfigError("max_file_mb and file_timeout must be positive")
    return settings


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    **flags: Any,
) -> Settings:
    """Build Settings from askdoc.toml (``config_file`` or ``$ASKDOC_CONFIG`` or ./askdoc.toml),
    then ASKDOC_* variables, then the given flags (None values are ignored)."""
    env = os.environ if environ is None else environ
    path = config_file or Path(env.get("ASKDOC_CONFIG", "askdoc.toml"))
    values: dict[str, Any] = {}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
        llm = data.pop("llm", {})
        table = data.get("askdoc", data)
        if not isinstance(table, dict) or not isinstance(llm, dict):
            raise ConfigError(f"{path}: [askdoc] and [llm] must be tables")
        values.update(table)
        values.update({f"llm_{k}": v for k, v in llm.items()})
    for name in _FIELD_TYPES:
        key = f"ASKDOC_{name.upper()}"
        if key in env and env[key] != "":
            values[name] = env[key]
    values.update({k: v for k, v in flags.items() if v is not None})
    settings = Settings().with_overrides(**values)
    return replace(settings, extra={"config_file": str(path) if path.is_file() else ""})
