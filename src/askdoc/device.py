"""Which device the model will run on, told without importing torch (for ``askdoc status``)."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

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


def device_hint(backend: str = "torch") -> str:
    """The device ``Embedder.load`` will pick, guessed without importing torch (for ``askdoc
    status``). With torch: "cuda (<GPU name>)" when the NVIDIA driver lists a GPU,
    CUDA_VISIBLE_DEVICES does not hide it and the installed torch build has CUDA; otherwise
    "cpu", with the reason when a GPU was seen but will not be used. With onnx: "cpu
    (onnxruntime)", naming a GPU that torch could use instead."""
    names = _gpu_names()
    if backend == "onnx":
        usable = names and device_hint("torch").startswith("cuda")
        return "cpu (onnxruntime)" + (
            f'; GPU {names[0]} unused (backend = "torch" would use it)' if usable else ""
        )
    if not names:
        return "cpu"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return f"cpu (GPU {names[0]} hidden by CUDA_VISIBLE_DEVICES)"
    if not _torch_has_cuda():
        return f"cpu (GPU {names[0]} present, but the installed torch has no CUDA)"
    return f"cuda ({', '.join(names)})"
