"""The torch-free model path: the ONNX export gives sentence-transformers' vectors (cosine >=
0.9999 on 300+ varied texts, and the same sentence vectors), the same top-10 passages on both
shipped evaluation sets, a stamped export that is reused, redone when it no longer matches, and
a one-line notice with torch when no export can be made."""

from __future__ import annotations

import importlib.util
import json
import shutil
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from askdoc import onnx_embedder
from askdoc.cli import main
from askdoc.config import Settings
from askdoc.embedder import Embedder
from askdoc.engine import Engine
from askdoc.errors import OnnxError
from askdoc.ingest import split_sentences
from askdoc.onnx_embedder import ExportStamp, batch_tokenizer, current_export, exporter_identity
from askdoc.retrieval import FusionParams, search
from tests.conftest import REPO, SAMPLE_CORPUS

MIN_COSINE = 0.9999
EVAL = REPO / "eval"


def _load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def questions(name: str) -> list[str]:
    lines = (EVAL / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def varied_texts() -> list[str]:
    """Over 300 texts: questions, corpus sentences of every length, prose from the Python docs,
    code, numbers, non-Latin scripts, whitespace, empty, and texts past the 256 word-piece limit."""
    from pydoc_data.topics import topics

    corpus = (SAMPLE_CORPUS / "north-korea-russia-alliance.txt").read_text(encoding="utf-8")
    out = questions("sample.jsonl") + questions("pydoc.jsonl")
    out += [corpus[a:b] for a, b in split_sentences(corpus)][:80]
    docs = [topics[name] for name in sorted(topics)[:24]]
    out += [doc[a:b] for doc in docs for a, b in split_sentences(doc)[:6]]
    out += [
        "",
        " ",
        "a",
        "  leading and trailing spaces  ",
        "tab\tseparated\tand\nnew\nlines",
        "ÜBER CAPITALS AND ünïcödé — “quotes” … ✓ 🚀",
        "中文字符和日本語のテキスト",
        "Русский текст о договоре между странами.",
        "نص عربي قصير",
        "def f(x: int) -> int:\n    return x ** 2  # squared",
        "3.14159 2,718 1e-9 0x1F 42% $19.99 2024-06-19",
        "!!! ??? ... ;;; ---",
        "word " * 400,
        corpus[:4000],
        " ".join(docs[0].split()[:600]),
    ]
    return out


@pytest.fixture
def onnx_cache(model_cache: Path) -> Path:
    return model_cache  # where the session's export was made (tests/conftest.py)


@pytest.fixture
def exported(real_embedder: Embedder) -> Embedder:
    """The packaged model through the export made in this session, in an empty cache."""
    return real_embedder


@pytest.fixture(scope="session")
def torch_model() -> Embedder:
    embedder = Embedder(backend="torch")
    embedder.load()
    embedder.set_threads(1)
    return embedder


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.min(np.sum(a * b, axis=1)))


@pytest.mark.model
def test_onnx_vectors_match_sentence_transformers(
    exported: Embedder, torch_model: Embedder
) -> None:
    assert exported.runtime == "onnx" and exported.notice == ""
    texts = varied_texts()
    assert len(texts) >= 300
    onnx = exported.encode(texts, batch_size=32)
    torch = torch_model.encode(texts, batch_size=32)
    cosines = np.sum(onnx * torch, axis=1)
    worst = int(np.argmin(cosines))
    assert cosines[worst] >= MIN_COSINE, texts[worst]
    assert float(np.max(np.abs(onnx - torch))) < 1e-5
    one = np.stack([exported.encode_query(t) for t in texts[:20]])  # unpadded, one at a time
    assert min_cosine(one, torch[:20]) >= MIN_COSINE


@pytest.mark.model
def test_onnx_sentence_vectors_match_sentence_transformers(
    exported: Embedder, torch_model: Embedder
) -> None:
    """Passage vectors and the late-pooled sentence vectors of the index, both ways."""
    from pydoc_data.topics import topics

    corpus = (SAMPLE_CORPUS / "north-korea-russia-alliance.txt").read_text(encoding="utf-8")
    docs = [corpus] + [topics[name] for name in sorted(topics)[24:40]]
    texts = [doc[i : i + 1200] for doc in docs for i in range(0, min(len(doc), 6000), 1200)]
    texts += [t for t in varied_texts() if len(t) > 1000]
    spans = [split_sentences(t) for t in texts]
    onnx, onnx_pooled = exported.encode_passages(texts, spans)
    torch, torch_pooled = torch_model.encode_passages(texts, spans)
    assert min_cosine(onnx, torch) >= MIN_COSINE
    assert min_cosine(onnx, exported.encode(texts)) >= MIN_COSINE
    compared = 0
    for ours, theirs in zip(onnx_pooled, torch_pooled, strict=True):
        assert ours.shape == theirs.shape
        if len(ours):
            assert min_cosine(ours, theirs) >= MIN_COSINE
            compared += len(ours)
    assert compared > 100


def top10(engine: Engine, vectors: np.ndarray, texts: list[str], mode: str) -> list[list[int]]:
    reader = engine.open_index()
    out = []
    for vector, text in zip(vectors, texts, strict=True):
        if mode == "dense":
            with reader.snapshot():
                out.append([chunk for chunk, _ in reader.dense(vector, 10)])
        else:
            out.append([h.chunk_id for h in search(reader, vector, text, 10, mode, FusionParams())])
    return out


@pytest.mark.model
@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["sample.jsonl", "pydoc.jsonl"])
def test_same_top10_on_the_eval_sets(
    dataset: str,
    exported: Embedder,
    torch_model: Embedder,
    tmp_path: Path,
) -> None:
    corpus = tmp_path / "corpus"
    if dataset == "sample.jsonl":
        shutil.copytree(SAMPLE_CORPUS, corpus)
    else:
        _load_script("make_pydoc_corpus").write_corpus(corpus)
    engine = Engine(replace(Settings(), corpus=corpus, index=tmp_path / "index"), exported)
    report = engine.build()
    assert report.chunks > 0 and not report.skipped
    asked = questions(dataset)
    onnx = np.stack([exported.encode_query(q) for q in asked])
    torch = np.stack([torch_model.encode_query(q) for q in asked])
    assert min_cosine(onnx, torch) >= MIN_COSINE
    for mode in ("dense", "hybrid"):
        assert top10(engine, onnx, asked, mode) == top10(engine, torch, asked, mode), mode
    engine.close()


@pytest.mark.model
def test_export_is_stamped_and_reused(
    exported: Embedder, onnx_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = onnx_embedder.export_folder(onnx_cache, json.loads(exported.fingerprint.to_json()))
    stamp = ExportStamp.read(folder / onnx_embedder.STAMP_NAME)
    assert stamp is not None
    assert dict(stamp.model) == json.loads(exported.fingerprint.to_json())
    assert dict(stamp.exporter) == exporter_identity()
    assert stamp.exporter["torch"] and stamp.exporter["opset"] == onnx_embedder.OPSET
    assert stamp.size == (folder / onnx_embedder.ONNX_NAME).stat().st_size

    def no_export(*_args: object) -> np.ndarray:
        raise AssertionError("exported again")

    monkeypatch.setattr(Embedder, "_export_onnx", no_export)
    again = Embedder(cache=onnx_cache)
    again.load()
    assert again.runtime == "onnx"
    text = "Which exception does a failed assert raise?"
    assert np.allclose(again.encode_query(text), exported.encode_query(text))


@pytest.mark.model
def test_damaged_export_is_made_again(exported: Embedder, onnx_cache: Path, tmp_path: Path) -> None:
    """A changed byte in model.onnx (same size) fails the sha256 check: a new export."""
    model = json.loads(exported.fingerprint.to_json())
    folder = onnx_embedder.export_folder(tmp_path, model)
    shutil.copytree(onnx_embedder.export_folder(onnx_cache, model), folder)
    onnx_file = folder / onnx_embedder.ONNX_NAME
    data = bytearray(onnx_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx_file.write_bytes(bytes(data))
    assert current_export(folder, model) is None
    again = Embedder(cache=tmp_path)
    again.load()
    assert again.runtime == "onnx" and again.notice == ""
    assert current_export(folder, model) == onnx_file
    text = "Which exception does a failed assert raise?"
    assert min_cosine(again.encode([text]), exported.encode([text])) >= MIN_COSINE


@pytest.mark.model
def test_export_that_disagrees_with_torch_is_not_used(exported: Embedder, tmp_path: Path) -> None:
    """The probe texts are checked right after an export: a graph whose vectors differ from
    torch's is refused (and nothing is left in the cache)."""
    good = exported._onnx.file
    model = json.loads(exported.fingerprint.to_json())

    def wrong_export(target: Path, probe: object) -> np.ndarray:
        shutil.copyfile(good, target)
        return np.eye(3, exported.dimension, dtype=np.float32)  # not what the graph gives

    with pytest.raises(OnnxError, match="disagrees with torch"):
        onnx_embedder.load_or_export(exported.path, model, 256, tmp_path, wrong_export)
    folder = onnx_embedder.export_folder(tmp_path, model)
    assert sorted(p.name for p in folder.iterdir()) == [".lock"]


@pytest.mark.model
def test_no_export_means_torch_with_a_one_line_notice(
    sample_engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def broken_export(*_args: object) -> np.ndarray:
        raise RuntimeError("exporter unavailable\nsecond line")

    monkeypatch.setattr(Embedder, "_export_onnx", broken_export)
    settings = sample_engine.settings
    monkeypatch.setenv("ASKDOC_MODEL_CACHE", str(tmp_path / "cache"))
    common = ["--corpus", str(settings.corpus), "--index", str(settings.index)]
    assert main([*common, "ask", "--json", "When was the agreement signed?"]) == 0
    out, err = capsys.readouterr()
    assert any("June 19" in s["text"] for s in json.loads(out)["answer"])
    lines = err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("askdoc: note: using torch for the model (slower): ")
    assert "exporter unavailable" in lines[0]


# ---------------------------------------------------------------- without the model


def test_tokenizer_truncates_at_the_model_limit_and_pads_to_the_longest() -> None:
    tokenizer = batch_tokenizer(Embedder().path / "tokenizer.json", 256)
    long, short = tokenizer.encode_batch(["word " * 400, "a short one"])
    assert len(long.ids) == len(short.ids) == 256
    assert long.ids[-1] == tokenizer.token_to_id("[SEP]")
    assert sum(short.attention_mask) == 5
    small = tokenizer.encode_batch(["a", "two words"])
    assert [len(e.ids) for e in small] == [4, 4]  # the longest of this batch, not a fixed 128


def fake_export(folder: Path, model: dict[str, object], content: bytes = b"graph") -> None:
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(content)
    stamp = ExportStamp(
        model, exporter_identity(), onnx_embedder.sha256_file(folder / "model.onnx"), len(content)
    )
    (folder / "export.json").write_text(stamp.to_json(), encoding="utf-8")


MODEL = {"name": "m", "dimension": 384, "max_seq_length": 256, "normalized": True}


def test_current_export_needs_the_same_model_exporter_and_bytes(tmp_path: Path) -> None:
    model = {**MODEL, "weights_sha256": "ab" * 32}
    folder = onnx_embedder.export_folder(tmp_path, model)
    assert current_export(folder, model) is None  # nothing yet
    fake_export(folder, model)
    assert current_export(folder, model) == folder / "model.onnx"
    assert current_export(folder, {**model, "max_seq_length": 128}) is None
    (folder / "model.onnx").write_bytes(b"grAph")  # same size, other bytes
    assert current_export(folder, model) is None
    (folder / "model.onnx").write_bytes(b"graph")
    stamp = json.loads((folder / "export.json").read_text(encoding="utf-8"))
    stamp["exporter"]["torch"] = "0.0.1"
    (folder / "export.json").write_text(json.dumps(stamp), encoding="utf-8")
    assert current_export(folder, model) is None
    (folder / "export.json").write_text("{not json", encoding="utf-8")
    assert current_export(folder, model) is None


def test_unusable_cache_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    model = {**MODEL, "weights_sha256": "cd" * 32}

    def never(*_args: object) -> np.ndarray:
        raise AssertionError("no export without a cache folder")

    with pytest.raises(OnnxError) as caught:
        onnx_embedder.load_or_export(tmp_path, model, 256, blocker, never)
    assert "\n" not in str(caught.value) and str(blocker) in str(caught.value)


def test_backend_setting_is_checked() -> None:
    from askdoc.config import load_settings
    from askdoc.errors import ConfigError

    assert load_settings(environ={"ASKDOC_BACKEND": "torch"}).backend == "torch"
    with pytest.raises(ConfigError, match="'backend' must be one of onnx, torch"):
        load_settings(environ={"ASKDOC_BACKEND": "tensorflow"})


def test_weights_checksum_is_remembered_by_size_mtime_and_inode(tmp_path: Path) -> None:
    from askdoc.onnx_embedder import remembered_sha256 as _remembered_sha256

    weights, memo = tmp_path / "model.safetensors", tmp_path / "cache" / "sha256.json"
    weights.write_bytes(b"weights")
    real = onnx_embedder.sha256_file(weights)
    assert _remembered_sha256(weights, memo) == real
    known = json.loads(memo.read_text(encoding="utf-8"))
    known[str(weights.resolve())]["sha256"] = "remembered"
    memo.write_text(json.dumps(known), encoding="utf-8")
    assert _remembered_sha256(weights, memo) == "remembered"  # same stat: not hashed again
    weights.write_bytes(b"other weights")
    assert _remembered_sha256(weights, memo) == onnx_embedder.sha256_file(weights)
    memo.write_text("[]", encoding="utf-8")
    assert _remembered_sha256(weights, memo) == onnx_embedder.sha256_file(weights)


@pytest.mark.model
def test_preload_reads_the_model_in_the_background(exported: Embedder, onnx_cache: Path) -> None:
    embedder = Embedder(cache=onnx_cache)
    embedder.preload()
    assert embedder._preloading is not None
    embedder.load()
    assert embedder.runtime == "onnx"
    assert not embedder._preloading.is_alive()
    text = "Which exception does a failed assert raise?"
    assert np.allclose(embedder.encode_query(text), exported.encode_query(text))


EXIT_PROBE = """
import sys, time
from askdoc.embedder import Embedder
embedder = Embedder(cache=sys.argv[1])
embedder.preload()
time.sleep(float(sys.argv[2]))  # then exit while onnxruntime may still be building its session
"""


@pytest.mark.model
def test_exit_while_the_model_loads_is_clean(exported: Embedder, onnx_cache: Path) -> None:
    """A process (the TUI quit at once, an error) may end while onnxruntime builds its session
    in another thread: the exit waits for it instead of aborting the process."""
    import subprocess
    import sys

    for pause in ("0", "0.05", "0.15", "0.3"):
        done = subprocess.run(
            [sys.executable, "-c", EXIT_PROBE, str(onnx_cache), pause],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (pause, done.stderr[-500:])
