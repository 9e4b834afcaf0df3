"""Quoted vs generated answers on a Q&A file, with a real local model: starts llama.cpp's server
(xllamacpp) with SmolLM2-135M-Instruct on a free port, one thread, then runs
``askdoc eval FILE --generate`` against it.

    python scripts/eval_generate.py                         # eval/sample.jsonl on corpus/
    python scripts/eval_generate.py eval/pydoc.jsonl --corpus eval/pydoc-corpus --limit 40
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from llm_server import start  # noqa: E402

from askdoc.cli import main  # noqa: E402


def run(argv: list[str]) -> int:
    args = argv or ["eval/sample.jsonl"]
    server = start(threads=1)
    try:
        return main(["eval", *args, "--generate", "--llm-url", server.url, "--summary-only"])
    finally:
        server.close()


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
