"""The model without torch: its ONNX export, made once and kept with a fingerprint, run by
onnxruntime on word-pieces from the ``tokenizers`` library. The only onnxruntime import (lazy).

The export is the transformer alone (word-piece ids in, word-piece vectors out); tokenisation
(truncation at the model's ``max_seq_length``, padding to the longest text of a batch), mean
pooling over the attention mask and normalisation are done here exactly as sentence-transformers
does them, so vectors match the torch path to ~2e-7 (tests/test_onnx.py).

The export lives in ``<cache>/onnx/<first 16 hex of the weights' sha256>/``: ``model.onnx`` and
``export.json``, which records the model's fingerprint, the exporter (torch version, opset, this
module's ``EXPORT_VERSION``) and the sha256 of ``model.onnx``. Any difference from what the
running askdoc would export, or a damaged file, means a new export (under a file lock, so two
processes never write it at once).
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from askdoc.errors import OnnxError

EXPORT_VERSION = 1
"""Bump when the export itself changes (inputs, outputs, attention kind): old exports are redone."""
OPSET = 17
ONNX_NAME = "model.onnx"
STAMP_NAME = "export.json"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
PROBE = (
    "a",
    "How many passages does the index hold, and which model embedded them?",
    "Word-pieces past the limit are cut. " * 40,
)
"""Texts embedded both ways right after an export (one padded batch, one truncated text): the
export is used only if every vector matches torch's."""
MIN_PROBE_COSINE = 0.9999

Exporter = Callable[[Path, Sequence[str]], np.ndarray]
"""export(target, probe): write the model's ONNX graph to ``target`` (INPUTS in, word-piece
vectors out) and return torch's normalized vectors of ``probe``."""


_BUSY = threading.Condition()
_busy = 0


@contextmanager
def native_work() -> Iterator[None]:
    """Mark onnxruntime work under way (building a session, running one): the interpreter's
    exit waits for it. A process ending while onnxruntime works in another thread is aborted
    ("terminate called without an active exception"), e.g. the TUI quit while the model loads."""
    global _busy
    with _BUSY:
        _busy += 1
    try:
        yield
    finally:
        with _BUSY:
            _busy -= 1
            _BUSY.notify_all()


def _wait_for_native_work() -> None:
    with _BUSY:
        _BUSY.wait_for(lambda: _busy == 0, timeout=60)


atexit.register(_wait_for_native_work)


def default_cache() -> Path:
    """``$ASKDOC_MODEL_CACHE`` (the model_cache setting), else ``$XDG_CACHE_HOME/askdoc`` or
    ``~/.cache/askdoc``."""
    if os.environ.get("ASKDOC_MODEL_CACHE"):
        return Path(os.path.expanduser(os.environ["ASKDOC_MODEL_CACHE"]))
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "askdoc"


def exporter_identity() -> dict[str, Any]:
    """What makes the export, read without importing torch."""
    try:
        torch = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch = ""
    return {"torch": torch, "opset": OPSET, "export_version": EXPORT_VERSION}


@dataclass(frozen=True)
class ExportStamp:
    """The contents of ``export.json``: which model, which exporter, which file."""

    model: Mapping[str, Any]
    exporter: Mapping[str, Any]
    sha256: str
    size: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=1)

    @classmethod
    def read(cls, path: Path) -> ExportStamp | None:
        """The stamp in ``path``, or None when it is missing or not a stamp."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(dict(data["model"]), dict(data["exporter"]), data["sha256"], data["size"])
        except (OSError, ValueError, KeyError, TypeError):
            return None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def remembered_sha256(path: Path, memo: Path) -> str:
    """sha256 of a file, remembered in the JSON file ``memo`` by path, size, mtime and inode
    (as unchanged documents are recognised): the model's 90 MB weights are hashed once, not at
    every start (~0.07 s). A memo that cannot be read or written only means hashing again."""
    info = path.stat()
    key, stat = str(path.resolve()), [info.st_size, info.st_mtime_ns, info.st_ino]
    try:
        known = json.loads(memo.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    known = known if isinstance(known, dict) else {}
    entry = known.get(key)
    if isinstance(entry, dict) and entry.get("stat") == stat and entry.get("sha256"):
        return str(entry["sha256"])
    digest = sha256_file(path)
    known[key] = {"stat": stat, "sha256": digest}
    with suppress(OSError):  # a read-only cache: the next start hashes again
        memo.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(memo, json.dumps(known, sort_keys=True).encode("utf-8"))
    return digest


def export_folder(cache: Path, model: Mapping[str, Any]) -> Path:
    return cache / "onnx" / str(model.get("weights_sha256", "unknown"))[:16]


def has_export(cache: Path, model: Mapping[str, Any]) -> bool:
    """Whether an export of ``model`` is stamped in ``cache`` (not checked: see current_export)."""
    return (export_folder(cache, model) / STAMP_NAME).is_file()


def stamped_export(folder: Path, model: Mapping[str, Any]) -> ExportStamp | None:
    """The stamp in ``folder`` if it names this model and this exporter and ``model.onnx`` has
    its size (the file's sha256 is not checked here)."""
    stamp = ExportStamp.read(folder / STAMP_NAME)
    if stamp is None or dict(stamp.model) != dict(model):
        return None
    if dict(stamp.exporter) != exporter_identity():
        return None
    try:
        if (folder / ONNX_NAME).stat().st_size != stamp.size:
            return None
    except OSError:
        return None
    return stamp


def current_export(folder: Path, model: Mapping[str, Any]) -> Path | None:
    """``model.onnx`` in ``folder`` if its stamp names this model and this exporter and the
    file's sha256 matches the stamp; otherwise None."""
    stamp = stamped_export(folder, model)
    try:
        if stamp is None or sha256_file(folder / ONNX_NAME) != stamp.sha256:
            return None
    except OSError:
        return None
    return folder / ONNX_NAME


def _open_checked(
    folder: Path, stamp: ExportStamp, tokenizer: Path, limit: int
) -> OnnxModel | None:
    """The export opened while its sha256 is checked in another thread (both release the GIL:
    the check costs no time on two cores); None if it is damaged or cannot be opened."""
    digest: list[str] = []

    def check() -> None:
        try:
            digest.append(sha256_file(folder / ONNX_NAME))
        except OSError:
            digest.append("")

    hashing = threading.Thread(target=check, name="askdoc-onnx-sha256", daemon=True)
    hashing.start()
    try:
        runner = OnnxModel(folder / ONNX_NAME, tokenizer, limit)
    except Exception:  # a damaged file: made again below, under the lock
        return None
    finally:
        hashing.join()
    return runner if digest == [stamp.sha256] else None


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    with (folder / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load_or_export(
    model_dir: Path,
    model: Mapping[str, Any],
    max_seq_length: int,
    cache: Path,
    export: Exporter,
) -> OnnxModel:
    """The model's ONNX export, made now with ``export`` if the cache has none for this model
    and exporter. Raises OnnxError (one line) when it can be neither found nor made."""
    folder = export_folder(cache, model)
    try:
        stamp = stamped_export(folder, model)
        if stamp is not None:
            runner = _open_checked(folder, stamp, model_dir / "tokenizer.json", max_seq_length)
            if runner is not None:
                return runner
        folder.mkdir(parents=True, exist_ok=True)
        with _locked(folder):
            found = current_export(folder, model)  # another process may have made it meanwhile
            if found is None:
                found = _export(folder, model, max_seq_length, model_dir, export)
        return OnnxModel(found, model_dir / "tokenizer.json", max_seq_length)
    except OnnxError:
        raise
    except Exception as exc:  # anything on the way (disk, exporter, runtime) is one line
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise OnnxError(f"no ONNX export of the model in {folder}: {first}") from exc


def _export(
    folder: Path, model: Mapping[str, Any], max_seq_length: int, model_dir: Path, export: Exporter
) -> Path:
    """Export into ``folder``, check the probe texts against torch, then publish the file and
    its stamp (file first: a reader never sees a stamp without its file)."""
    tmp = folder / f".{ONNX_NAME}.{os.getpid()}.tmp"
    try:
        reference = export(tmp, PROBE)
        runner = OnnxModel(tmp, model_dir / "tokenizer.json", max_seq_length)
        cosine = float(np.min(np.sum(runner.embed(list(PROBE)) * reference, axis=1)))
        if cosine < MIN_PROBE_COSINE:
            raise OnnxError(f"the ONNX export disagrees with torch (cosine {cosine:.6f})")
        with tmp.open("rb+") as handle:
            os.fsync(handle.fileno())
        stamp = ExportStamp(dict(model), exporter_identity(), sha256_file(tmp), tmp.stat().st_size)
        os.replace(tmp, folder / ONNX_NAME)
        _write_atomic(folder / STAMP_NAME, stamp.to_json().encode("utf-8"))
    finally:
        tmp.unlink(missing_ok=True)
    return folder / ONNX_NAME


def batch_tokenizer(tokenizer_file: Path, max_seq_length: int) -> Any:
    """The model's tokenizer as sentence-transformers uses it: truncation at ``max_seq_length``
    word-pieces (special tokens included), padding to the longest text of each batch (the
    shipped tokenizer.json says 128 and a fixed 128)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    padding = dict(tokenizer.padding or {})
    tokenizer.enable_truncation(max_length=max_seq_length)
    tokenizer.enable_padding(
        pad_id=int(padding.get("pad_id", 0)),
        pad_type_id=int(padding.get("pad_type_id", 0)),
        pad_token=str(padding.get("pad_token", "[PAD]")),
    )
    return tokenizer


def model_inputs(tokenizer: Any, texts: Sequence[str]) -> tuple[dict[str, np.ndarray], list[Any]]:
    """The model's INPUTS for one batch (int64, padded at the end) and the encodings."""
    encodings = tokenizer.encode_batch(list(texts), add_special_tokens=True)
    feed = {
        "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
    }
    return feed, encodings


class OnnxModel:
    """One ONNX export with its tokenizer: word-piece vectors and pooled text vectors."""

    def __init__(self, onnx_file: Path, tokenizer_file: Path, max_seq_length: int) -> None:
        import onnxruntime

        self.file = onnx_file
        self._runtime = onnxruntime
        self._tokenizer = batch_tokenizer(tokenizer_file, max_seq_length)
        self._sessions: dict[int, Any] = {}
        self.threads = 1
        self._session()  # fail now, not at the first question

    def set_threads(self, threads: int) -> None:
        """Intra-op threads of the session used from now on; 0 means all cores."""
        self.threads = max(1, threads or (os.cpu_count() or 1))

    def _session(self) -> Any:
        session = self._sessions.get(self.threads)
        if session is None:
            options = self._runtime.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            with native_work():
                session = self._runtime.InferenceSession(
                    str(self.file), options, providers=["CPUExecutionProvider"]
                )
            self._sessions[self.threads] = session
        return session

    def forward(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[Any]]:
        """(word-piece vectors (batch, length, dim), attention mask (batch, length), the
        tokenizer's encodings with their character offsets) for one batch, padded at the end."""
        feed, encodings = model_inputs(self._tokenizer, texts)
        session = self._session()
        wanted = {i.name for i in session.get_inputs()}
        with native_work():
            hidden = session.run(None, {k: v for k, v in feed.items() if k in wanted})[0]
        return np.asarray(hidden, dtype=np.float32), feed["attention_mask"], encodings

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Normalized mean of each text's word-piece vectors: (len(texts), dim) float32."""
        hidden, mask, _ = self.forward(texts)
        return mean_pool(hidden, mask)


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """sentence-transformers' mean pooling over the attention mask, then L2 normalisation."""
    weights = mask[:, :, None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    counts = np.clip(weights.sum(axis=1), 1e-9, None)
    vectors = summed / counts
    norms = np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
    return np.asarray(vectors / norms, dtype=np.float32)
