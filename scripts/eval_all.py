"""Run askdoc's shipped evaluation sets in all three retrieval modes (what `make eval` runs).

1. regenerate the pydoc corpus (scripts/make_pydoc_corpus.py) into eval/pydoc-corpus;
2. every set of ``SETS`` against its corpus, each with ``--modes dense,lexical,hybrid``
   (indexes are kept in .cache/askdoc-eval/ and updated incrementally);
3. print each summary and write eval/results/<set>.json and .md. When an earlier
   eval/results/<set>.json exists, the run is compared with it (old -> new, delta) first.

Usage: python scripts/eval_all.py [--no-write] [--out DIR] [extra askdoc eval options...]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETS = (
    ("atlas-tune", Path("eval/atlas-tune.jsonl"), Path("eval/atlas-corpus")),
    ("atlas-heldout", Path("eval/atlas-heldout.jsonl"), Path("eval/atlas-corpus")),
    ("pydoc-users", Path("eval/pydoc-users.jsonl"), Path("eval/pydoc-corpus")),
    ("sample", Path("eval/sample.jsonl"), Path("corpus")),
    ("pydoc", Path("eval/pydoc.jsonl"), Path("eval/pydoc-corpus")),
)
"""atlas-tune is the only set the defaults were tuned on (fusion, refusal); atlas-heldout and
pydoc-users were never tuned on (docs/evaluation.md)."""
MODES = "dense,lexical,hybrid"


def regenerate_pydoc_corpus(out: Path) -> int:
    spec = importlib.util.spec_from_file_location(
        "make_pydoc_corpus", REPO / "scripts" / "make_pydoc_corpus.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return int(module.write_corpus(out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--no-write", action="store_true", help="do not write eval/results/")
    parser.add_argument("--out", type=Path, default=Path("eval/results"), help="results folder")
    args, extra = parser.parse_known_args(argv)
    os.chdir(REPO)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(name, "1")
    from askdoc.cli import main as askdoc

    count = regenerate_pydoc_corpus(REPO / "eval" / "pydoc-corpus")
    print(f"pydoc corpus: {count} topic files in eval/pydoc-corpus", flush=True)
    worst = 0
    for name, qa, corpus in SETS:
        print(f"\n== {name}: {qa} against {corpus}/ ==", flush=True)
        argv_set = ["eval", str(qa), "--corpus", str(corpus), "--modes", MODES, "--summary-only"]
        if not args.no_write:
            previous = args.out / f"{name}.json"
            if previous.is_file():
                argv_set += ["--compare", str(previous)]
            argv_set += ["--json", str(previous), "--markdown", str(args.out / f"{name}.md")]
        code = askdoc([*argv_set, *extra])
        worst = max(worst, code)
    return worst


if __name__ == "__main__":
    sys.exit(main())
