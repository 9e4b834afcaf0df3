"""The CLI on the Milvus store with the real model: `askdoc index`, `ask --json`, `status` and
`verify --store milvus-lite:...` over the sample corpus give the embedded store's answers and
citations."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from test_integration import QUESTIONS

from askdoc.cli import main

pytest.importorskip("pymilvus")
pytestmark = pytest.mark.model

REPO = Path(__file__).resolve().parents[1]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def cited(answer: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The answer's sentences, each with the file, span and lines of what it cites."""
    return [(s["text"], s["path"], s["start"], s["end"], s["line"]) for s in answer["answer"]]


def test_index_ask_status_verify_on_milvus_lite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(REPO / "corpus", corpus)
    milvus = ["--corpus", str(corpus), "--store", f"milvus-lite:{tmp_path / 'askdoc.db'}"]
    embedded = ["--corpus", str(corpus), "--index", str(tmp_path / "index")]
    code, out = run(capsys, "index", *milvus)
    assert code == 0 and "into Milvus collection 'askdoc' at" in out
    assert "1 documents, 4 passages (4 embedded this run)" in out
    assert run(capsys, "index", *embedded)[0] == 0
    for question, line, phrase in QUESTIONS:
        answers = []
        for store in (milvus, embedded):
            code, out = run(capsys, "ask", question, "--json", *store)
            assert code == 0
            answers.append(json.loads(out))
        ours, theirs = answers[1], answers[0]
        assert theirs["found"] and cited(theirs) == cited(ours), question
        assert any(s["line"] == line and phrase in s["text"] for s in theirs["answer"])
        assert theirs["sources"][0] == {
            **ours["sources"][0],
            "score": theirs["sources"][0]["score"],
        }
    code, out = run(capsys, "status", *milvus)
    assert code == 0 and "store   Milvus · generation 1" in out and "drift   none" in out
    code, out = run(capsys, "verify", *milvus)
    assert code == 0 and out.endswith(": ok\n")
