"""Write the Python documentation topics as a plain-text corpus for evaluating askdoc.

Source: ``pydoc_data.topics.topics``, the dict (topic name -> text) that ships with
CPython and backs ``help("assert")``, ``help("formatstrings")`` and so on. Its text comes
from the Python Language Reference and Library Reference and is distributed under the
Python Software Foundation License (PSF License Agreement); pydoc_data ships with CPython.
Nobody on the askdoc team wrote it, which is the point: it is a realistic corpus.

Each topic becomes ``<out>/<topic>.txt`` (default ``eval/pydoc-corpus``), with the text
exactly as in the dict plus a trailing newline if it lacks one. The output depends only on
the running interpreter's ``pydoc_data`` (line numbers cited by ``eval/pydoc.jsonl`` are
checked against it by ``tests/test_eval_data.py``).

The script is idempotent: it overwrites its files and deletes ``.txt`` files that an
earlier run wrote (recorded in a manifest in the output folder) but that no longer
correspond to a topic. Files it did not write are never touched.

Usage: python scripts/make_pydoc_corpus.py [--out eval/pydoc-corpus]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "eval" / "pydoc-corpus"
MANIFEST_NAME = ".make_pydoc_corpus-manifest"
_SAFE_TOPIC = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def load_topics() -> dict[str, str]:
    """Return the pydoc topics shipped with this interpreter."""
    from pydoc_data.topics import topics

    return dict(topics)


def _read_manifest(path: Path) -> list[str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(data, list):
        return []
    return [name for name in data if isinstance(name, str)]


def write_corpus(out_dir: Path) -> int:
    """Write one ``<topic>.txt`` per pydoc topic into ``out_dir``; return the file count."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    topics = load_topics()
    manifest_path = out_dir / MANIFEST_NAME

    written: list[str] = []
    for name in sorted(topics):
        if not _SAFE_TOPIC.fullmatch(name):
            raise ValueError(f"unexpected pydoc topic name: {name!r}")
        text = topics[name]
        if not text.endswith("\n"):
            text += "\n"
        file_name = f"{name}.txt"
        (out_dir / file_name).write_text(text, encoding="utf-8", newline="\n")
        written.append(file_name)

    current = set(written)
    for file_name in _read_manifest(manifest_path):
        if file_name in current or not file_name.endswith(".txt"):
            continue
        if Path(file_name).name != file_name or file_name.startswith("."):
            continue
        stale = out_dir / file_name
        if stale.is_file():
            stale.unlink()

    manifest_path.write_text(json.dumps(written, indent=0) + "\n", encoding="utf-8")
    return len(written)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"output folder (default: {DEFAULT_OUT.relative_to(REPO_ROOT)})",
    )
    args = parser.parse_args(argv)
    count = write_corpus(args.out)
    print(f"wrote {count} topic files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
