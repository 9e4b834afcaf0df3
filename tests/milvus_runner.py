"""Run a Milvus build in its own process with the fake embedder, for the kill test. Not a test
module: tests/test_milvus.py starts it as a subprocess.

    python tests/milvus_runner.py --corpus C --store milvus-lite:PATH.db [--group N]
        [--kill-after N]

After each file written it prints one JSON line (passages embedded so far); ``--kill-after N``
SIGKILLs the process right after the N-th file is written. At the end it prints the report:
embedded, chunks (passages in the index).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "src")]

from askdoc.config import load_settings  # noqa: E402
from askdoc.index import milvus_writer  # noqa: E402
from askdoc.index.milvus_writer import MilvusWriter  # noqa: E402
from tests.conftest import FakeEmbedder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--group", type=int, default=milvus_writer.GROUP_PASSAGES)
    parser.add_argument("--kill-after", type=int, default=0)
    args = parser.parse_args()
    milvus_writer.GROUP_PASSAGES = args.group
    settings = load_settings(environ={}, corpus=Path(args.corpus), store=args.store)
    embedder = FakeEmbedder()
    writer = MilvusWriter(settings, embedder)
    written = 0
    original = MilvusWriter._write_file

    def write_file(self: MilvusWriter, *a: Any, **k: Any) -> None:
        nonlocal written
        original(self, *a, **k)
        written += 1
        print(json.dumps({"written": written, "embedded": len(embedder.encoded)}), flush=True)
        if written == args.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    MilvusWriter._write_file = write_file  # type: ignore[method-assign]
    report = writer.build()
    print(
        json.dumps(
            {"embedded": report.embedded, "chunks": report.chunks, "total_passages": report.chunks}
        )
    )


if __name__ == "__main__":
    main()
