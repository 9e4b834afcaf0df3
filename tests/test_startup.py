"""Start-up stays light: `askdoc --help`, `askdoc status` and the device hint never import torch,
sentence_transformers, transformers or faiss (they cost ~10 s here), and `askdoc ask` and
`askdoc eval` answer through the model's ONNX export without torch. Each probe runs in a fresh
interpreter and reports the modules it loaded; no timings are asserted."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from askdoc.cli import main
from askdoc.config import Settings
from askdoc.engine import Engine
from tests.conftest import REPO, FakeEmbedder

HEAVY = ("torch", "sentence_transformers", "transformers", "faiss", "sklearn")
TORCH = ("torch", "sentence_transformers", "transformers", "sklearn")
"""What the question path must not import (it needs faiss and onnxruntime)."""

PROBE = """
import contextlib, io, json, sys
from askdoc.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
print(json.dumps({"code": code, "out": out.getvalue(), "modules": sorted(sys.modules)}))
"""

HINT = """
import json, sys
from askdoc.embedder import device_hint
print(json.dumps({"hint": device_hint(), "modules": sorted(sys.modules)}))
"""


def run_probe(code: str, *args: str, cwd: Path) -> dict[str, object]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def heavy_modules(modules: object) -> list[str]:
    assert isinstance(modules, list)
    return sorted({m.split(".")[0] for m in modules} & set(HEAVY))


def test_help_imports_nothing_heavy(tmp_path: Path) -> None:
    result = run_probe(PROBE, "--help", cwd=tmp_path)
    assert result["code"] == 0
    assert "usage: askdoc" in str(result["out"])
    assert heavy_modules(result["modules"]) == []


def test_status_imports_nothing_heavy(fake_engine: Engine, settings: Settings) -> None:
    fake_engine.build()
    fake_engine.close()
    args = ("status", "--index", str(settings.index), "--corpus", str(settings.corpus))
    result = run_probe(PROBE, *args, cwd=settings.index.parent)
    assert result["code"] == 0, result["out"]
    assert "passages" in str(result["out"])
    assert heavy_modules(result["modules"]) == []


@pytest.mark.model
def test_ask_and_eval_answer_without_torch(sample_engine: Engine, tmp_path: Path) -> None:
    """With the export made (here by the session's index build), a fresh `askdoc ask` and
    `askdoc eval` embed the question with onnxruntime: torch is never imported."""
    settings = sample_engine.settings
    common = ("--index", str(settings.index), "--corpus", str(settings.corpus))
    asked = run_probe(PROBE, "ask", *common, "--json", "When was the pact signed?", cwd=tmp_path)
    assert asked["code"] == 0
    assert any("June 19" in s["text"] for s in json.loads(str(asked["out"]))["answer"])
    evaluated = run_probe(
        PROBE, "eval", str(REPO / "eval" / "sample.jsonl"), *common, "--limit", "3", cwd=tmp_path
    )
    assert evaluated["code"] == 0, evaluated["out"]
    assert "summary" in str(evaluated["out"])
    for result in (asked, evaluated):
        modules = result["modules"]
        assert isinstance(modules, list)
        assert "onnxruntime" in modules
        assert sorted({m.split(".")[0] for m in modules} & set(TORCH)) == []


def test_device_hint_imports_nothing_heavy(tmp_path: Path) -> None:
    result = run_probe(HINT, cwd=tmp_path)
    assert str(result["hint"]).startswith(("cpu", "cuda"))
    assert heavy_modules(result["modules"]) == []


@pytest.mark.parametrize("visible", ["", "-1"])
def test_device_hint_respects_hidden_gpus(
    visible: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from askdoc import device

    gpus = tmp_path / "gpus" / "0000:01:00.0"
    gpus.mkdir(parents=True)
    (gpus / "information").write_text("Model: \t\t Test GPU\n", encoding="utf-8")
    monkeypatch.setattr(device, "NVIDIA_PROC", tmp_path / "gpus")
    monkeypatch.setattr(device, "_torch_has_cuda", lambda: True)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert device.device_hint() == "cuda (Test GPU)"
    assert device.device_hint("onnx") == (
        'cpu (onnxruntime); GPU Test GPU unused (backend = "torch" would use it)'
    )
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert device.device_hint().startswith("cpu")
    assert device.device_hint("onnx") == "cpu (onnxruntime)"


class ClosedPipe(io.StringIO):
    """stdout whose reader has gone (``askdoc ask --json ... | head -1``)."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_output_into_a_closed_pipe_stops_quietly(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("askdoc.engine.Embedder", lambda *_args, **_kwargs: FakeEmbedder())
    Engine(settings, FakeEmbedder()).build()
    common = ["--corpus", str(settings.corpus), "--index", str(settings.index)]
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main([*common, "ask", "--json", "Which think tank monitors the war?"]) == 141
    assert capsys.readouterr().err == ""
