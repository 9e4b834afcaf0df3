"""One Settings object: defaults < ``askdoc.toml`` < ``ASKDOC_*`` environment < flags."""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from askdoc.errors import ConfigError

MODES = ("hybrid", "dense", "lexical")
REFUSAL_NUMBERS = 11
"""refusal_weights: one per ``refusal.FEATURES`` (10), then the bias."""
BACKENDS = ("onnx", "torch")
STORE_FORMS = (
    '"" (the embedded store), "milvus-lite:PATH.db" (a file name of letters, digits, . - _, '
    'at most 35 characters), or "http(s)://HOST:PORT"'
)
LITE_FILE = re.compile(r"[A-Za-z0-9.\-_]{1,32}\.db")
"""Milvus Lite's own rule for its database file's name (milvus_lite/server.py)."""
COLLECTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,100}")


def store_uri_ok(uri: str) -> bool:
    """Whether ``uri`` names a store askdoc knows (``index.store.StoreLocation`` parses it)."""
    if uri == "":
        return True
    if uri.startswith("milvus-lite:"):
        return LITE_FILE.fullmatch(Path(uri.removeprefix("milvus-lite:")).name) is not None
    for scheme in ("http://", "https://"):
        if uri.startswith(scheme):
            return bool(uri.removeprefix(scheme).strip("/")) and not any(c.isspace() for c in uri)
    return False


@dataclass(frozen=True)
class Settings:
    """Every setting askdoc reads; each can be set in askdoc.toml, as ASKDOC_<NAME>, or by flag."""

    corpus: Path = Path("corpus")
    """Folder of documents to index (recursively)."""
    index: Path = Path("index")
    """Folder holding the index (SQLite database, FAISS file, manifest)."""
    model: str = ""
    """Folder of a sentence-transformers model; empty means the packaged all-MiniLM-L6-v2."""
    backend: str = "onnx"
    """What runs the model: "onnx" (onnxruntime on the model's ONNX export, made once into
    model_cache; no torch at question time) or "torch" (sentence-transformers)."""
    model_cache: str = ""
    """Folder for the model's ONNX export (~90 MB); empty means $XDG_CACHE_HOME/askdoc or
    ~/.cache/askdoc."""
    max_file_mb: float = 50.0
    """Files larger than this are skipped with a reason."""
    file_timeout: float = 30.0
    """Seconds one file may take to be read, parsed and chunked before it is skipped."""
    max_line_chars: int = 1_000_000
    """Longest line (or run of text without a sentence or paragraph break) a file may hold; a
    file with a longer one is skipped with a reason. The reader needs ~220 MB of memory and
    ~2.5 s per million characters of one line (docs/reliability.md)."""
    chunk_tokens: int = 200
    """Target size of a passage in word-pieces (never above the model's own limit)."""
    chunk_overlap: int = 40
    """Word-pieces of trailing context repeated at the start of the next passage."""
    batch_size: int = 32
    """Passages per embedding batch when indexing."""
    index_threads: int = 1
    """Model threads while indexing; 0 means all cores. 1 was fastest on shared 2-core machines
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
    store: str = ""
    """Where the index lives: empty for the embedded store in ``index`` (SQLite + FAISS);
    ``milvus-lite:PATH.db`` for Milvus Lite in one file; ``http://HOST:19530`` (or https://) for
    a Milvus server or cluster (docs/scale.md). Needs ``pip install 'askdoc[milvus]'``."""
    milvus_token: str = ""
    """Milvus server credentials, "user:password" or an API key (better set as
    ASKDOC_MILVUS_TOKEN). In askdoc.toml these three are the ``[milvus]`` table."""
    milvus_database: str = ""
    """Milvus database to use; empty: the server's default."""
    milvus_collection: str = "askdoc"
    """Name of the index in Milvus: its collections are called NAME_passages, NAME_documents,
    NAME_texts and NAME_meta."""
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
        return _apply(self, values, {})

    @property
    def db_path(self) -> Path:
        return self.index / "askdoc.sqlite3"


_FIELD_TYPES = {f.name: f.type for f in fields(Settings) if f.name != "extra"}


@dataclass(frozen=True)
class _Range:
    """The values a numeric setting allows: from ``low`` (or above it) up to ``high``."""

    low: float
    high: float | None = None
    above: bool = False

    def allows(self, value: float) -> bool:
        low_ok = value > self.low if self.above else value >= self.low
        return low_ok and (self.high is None or value <= self.high)

    def text(self, whole: bool) -> str:
        kind = "a whole number" if whole else "a number"
        low = f"{self.low:g}"
        if self.above:
            return f"{kind} above {low}"
        return f"{kind} from {low}" + (f" to {self.high:g}" if self.high is not None else "")


_RANGES = {
    "max_file_mb": _Range(0, above=True),
    "file_timeout": _Range(0, above=True),
    "max_line_chars": _Range(1000),
    "chunk_tokens": _Range(1),
    "batch_size": _Range(1),
    "index_threads": _Range(0),
    "top_k": _Range(1, 1000),
    "answer_sentences": _Range(1),
    "min_confidence": _Range(0, 1),
    "max_question_chars": _Range(1),
    "exact_below": _Range(0),
    "llm_timeout": _Range(0, above=True),
    "llm_max_tokens": _Range(1),
}
"""Every numeric setting's allowed values (chunk_overlap's depend on chunk_tokens)."""


def checked(name: str, value: Any, source: str = "") -> Any:
    """One setting's value, converted to its type and checked against what it allows;
    ConfigError naming the setting, ``source`` (where the value came from) and the rule."""
    kind = _FIELD_TYPES.get(name)
    if kind is None:
        known = ", ".join(_FIELD_TYPES)
        raise ConfigError(f"{_at(source)}unknown setting {name!r}; known settings: {known}")
    if kind == "Path":
        return Path(os.path.expanduser(str(value)))
    if kind == "tuple[float, ...]":
        return _weights(name, value, source)
    if kind == "str":
        if name == "mode" and value not in MODES:
            raise _invalid(name, value, source, f"one of {', '.join(MODES)}")
        if name == "backend" and value not in BACKENDS:
            raise _invalid(name, value, source, f"one of {', '.join(BACKENDS)}")
        if name == "store" and not store_uri_ok(str(value)):
            raise _invalid(name, value, source, STORE_FORMS)
        if name == "milvus_collection" and not COLLECTION_NAME.fullmatch(str(value)):
            allowed = "a letter or _, then up to 100 letters, digits or _"
            raise _invalid(name, value, source, allowed)
        return str(value)
    number = _number(value, whole=kind == "int")
    rule = _RANGES.get(name, _Range(0))
    if number is None or not rule.allows(number):
        raise _invalid(name, value, source, rule.text(whole=kind == "int"))
    return number


def _weights(name: str, value: Any, source: str) -> tuple[float, ...]:
    """refusal_weights: empty, or REFUSAL_NUMBERS finite numbers (a list, or "1,2,3" text)."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        items = [items]
    numbers = [_number(v, whole=False) for v in items if str(v).strip()]
    if numbers and (len(numbers) != REFUSAL_NUMBERS or any(n is None for n in numbers)):
        allowed = (
            f"{REFUSAL_NUMBERS} numbers (one weight per evidence feature, then the bias; "
            "write them with `askdoc eval FILE --calibrate`)"
        )
        raise _invalid(name, value, source, allowed)
    return tuple(float(n) for n in numbers if n is not None)


def _number(value: Any, whole: bool) -> int | float | None:
    """``value`` as a finite int (whole) or float, or None (bools, NaN, infinities, 2.5 for an
    int, text that is no number)."""
    if isinstance(value, bool):
        return None
    try:
        number = value if isinstance(value, int) else float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(number):
        return None
    if whole:
        return int(number) if float(number).is_integer() else None
    return float(number)


def _at(source: str) -> str:
    return f"{source}: " if source else ""


def _invalid(name: str, value: Any, source: str, allowed: str) -> ConfigError:
    return ConfigError(f"{_at(source)}setting {name!r} must be {allowed}, not {value!r}")


def _apply(base: Settings, values: Mapping[str, Any], sources: Mapping[str, str]) -> Settings:
    """``base`` with ``values`` (None ignored) converted, checked and applied; the one place
    settings are validated. ``sources`` says where each value came from, for messages."""
    clean = {
        name: checked(name, value, sources.get(name, ""))
        for name, value in values.items()
        if value is not None
    }
    settings = replace(base, **clean)
    for name in _FIELD_TYPES:
        if name not in clean:
            checked(name, getattr(settings, name))  # e.g. fields set with dataclasses.replace
    if not 0 <= settings.chunk_overlap < settings.chunk_tokens:
        allowed = f"a whole number from 0 to chunk_tokens - 1 ({settings.chunk_tokens - 1})"
        source = sources.get("chunk_overlap", "")
        raise _invalid(
            "chunk_overlap", values.get("chunk_overlap", settings.chunk_overlap), source, allowed
        )
    return settings


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    **flags: Any,
) -> Settings:
    """Build Settings from askdoc.toml (``config_file`` or ``$ASKDOC_CONFIG`` or ./askdoc.toml),
    then ASKDOC_* variables, then the given flags (None values are ignored). A settings file
    named explicitly must exist; none may be a folder."""
    env = os.environ if environ is None else environ
    path, _ = _config_path(config_file, env)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if path.is_file():
        for name, value in _read_toml(path).items():
            values[name], sources[name] = value, str(path)
    for name in _FIELD_TYPES:
        key = f"ASKDOC_{name.upper()}"
        if key in env and env[key] != "":
            values[name], sources[name] = env[key], key
    for name, value in flags.items():
        if value is not None:
            values[name], sources[name] = value, _FLAGS.get(name, f"--{name}")
    settings = _apply(Settings(), values, sources)
    return replace(settings, extra={"config_file": str(path) if path.is_file() else ""})


_FLAGS = {"top_k": "-k"}
"""Command-line flags named otherwise than ``--<setting>``."""


def _config_path(config_file: Path | None, env: Mapping[str, str]) -> tuple[Path, str]:
    """The settings file to read and who named it; ConfigError for a folder or a named file
    that is missing (the default ./askdoc.toml may be absent)."""
    if config_file is not None:
        path, origin = config_file, "--config"
    elif env.get("ASKDOC_CONFIG"):
        path, origin = Path(env["ASKDOC_CONFIG"]), "ASKDOC_CONFIG"
    else:
        path, origin = Path("askdoc.toml"), ""
    if path.is_dir():
        raise ConfigError(f"{_at(origin)}{path} is a folder, not a settings file")
    if origin and not path.exists():
        raise ConfigError(f"{origin}: there is no settings file {path}")
    return path, origin


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    llm = data.get("llm", {})
    milvus = data.get("milvus", {})
    table = data.get("askdoc", data)
    if not all(isinstance(t, dict) for t in (table, llm, milvus)):
        raise ConfigError(f"{path}: [askdoc], [llm] and [milvus] must be tables")
    values = {k: v for k, v in table.items() if k not in ("llm", "milvus")}
    values.update({f"llm_{k}": v for k, v in llm.items()})  # [llm] url = ... -> llm_url
    values.update({f"milvus_{k}": v for k, v in milvus.items()})  # [milvus] token -> milvus_token
    return values
