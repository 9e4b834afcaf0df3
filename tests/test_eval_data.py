"""Validate the evaluation data sets (fast, no model).

eval/sample.jsonl cites lines of corpus/ (paths relative to the repo root); eval/pydoc.jsonl
cites lines of the pydoc corpus, which scripts/make_pydoc_corpus.py regenerates from the
running interpreter's ``pydoc_data`` (here into a temporary folder).
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = REPO_ROOT / "eval" / "sample.jsonl"
PYDOC = REPO_ROOT / "eval" / "pydoc.jsonl"
SCRIPT = REPO_ROOT / "scripts" / "make_pydoc_corpus.py"
PYDOC_PREFIX = "pydoc-corpus/"
REQUIRED_KEYS = {"id", "question", "answers", "sources", "unanswerable"}
SOURCE_RE = re.compile(r"^(?P<path>[^:]+):(?P<line>[1-9][0-9]*)$")


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _load(path: Path) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        assert line.strip(), f"{path.name}:{number}: blank line"
        record = json.loads(line)
        assert isinstance(record, dict), f"{path.name}:{number}: not a JSON object"
        records.append(record)
    return records


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_pydoc_corpus", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check_sources(record: dict[str, Any], resolve: Any) -> None:
    """Every cited line exists and contains at least one of the answer phrases."""
    answers = [_norm(a) for a in record["answers"]]
    for source in record["sources"]:
        match = SOURCE_RE.match(source)
        assert match, f"{record['id']}: malformed source {source!r}"
        path: Path = resolve(match["path"])
        assert path.is_file(), f"{record['id']}: missing file for {source!r}"
        lines = path.read_text(encoding="utf-8").splitlines()
        number = int(match["line"])
        assert number <= len(lines), f"{record['id']}: {source!r} beyond end ({len(lines)})"
        cited = _norm(lines[number - 1])
        assert any(a in cited for a in answers), (
            f"{record['id']}: none of {record['answers']!r} in {source!r}: {lines[number - 1]!r}"
        )


@pytest.fixture(scope="module")
def pydoc_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pydoc-corpus")
    count = _load_script().write_corpus(out)
    assert count == len(list(out.glob("*.txt"))) > 0
    return out


@pytest.mark.parametrize("path", [SAMPLE, PYDOC], ids=["sample", "pydoc"])
def test_records_are_well_formed(path: Path) -> None:
    records = _load(path)
    ids = [r.get("id") for r in records]
    assert len(ids) == len(set(ids)), "duplicate ids"
    for record in records:
        assert REQUIRED_KEYS <= record.keys(), f"{record.get('id')}: missing keys"
        rid = record["id"]
        assert isinstance(rid, str) and rid
        assert isinstance(record["question"], str) and record["question"].strip(), rid
        assert isinstance(record["unanswerable"], bool), rid
        assert isinstance(record["answers"], list), rid
        assert isinstance(record["sources"], list), rid
        assert all(isinstance(a, str) and a.strip() for a in record["answers"]), rid
        assert all(isinstance(s, str) for s in record["sources"]), rid
        if record["unanswerable"]:
            assert not record["answers"] and not record["sources"], rid
        else:
            assert 1 <= len(record["answers"]) <= 3, rid
            assert record["sources"], rid
            assert all(len(a.split()) <= 6 for a in record["answers"]), rid


def test_ids_unique_across_files() -> None:
    ids = [r["id"] for path in (SAMPLE, PYDOC) for r in _load(path)]
    assert len(ids) == len(set(ids))


def test_sample_counts() -> None:
    records = _load(SAMPLE)
    unanswerable = sum(r["unanswerable"] for r in records)
    assert len(records) - unanswerable >= 28
    assert unanswerable >= 4


def test_sample_sources_contain_answers() -> None:
    def resolve(rel: str) -> Path:
        assert rel.startswith("corpus/"), rel
        return REPO_ROOT / rel

    for record in _load(SAMPLE):
        if not record["unanswerable"]:
            _check_sources(record, resolve)


def test_pydoc_counts() -> None:
    records = _load(PYDOC)
    answerable = [r for r in records if not r["unanswerable"]]
    assert len(answerable) >= 65
    assert len(records) - len(answerable) >= 5
    topics = {s.split(":")[0] for r in answerable for s in r["sources"]}
    assert len(topics) >= 40


def test_pydoc_sources_contain_answers(pydoc_corpus: Path) -> None:
    def resolve(rel: str) -> Path:
        assert rel.startswith(PYDOC_PREFIX), rel
        return pydoc_corpus / rel.removeprefix(PYDOC_PREFIX)

    for record in _load(PYDOC):
        if not record["unanswerable"]:
            _check_sources(record, resolve)


def test_write_corpus_is_deterministic_and_idempotent(pydoc_corpus: Path, tmp_path: Path) -> None:
    module = _load_script()
    count = module.write_corpus(tmp_path)
    (tmp_path / "notes.txt").write_text("not ours\n", encoding="utf-8")
    manifest = tmp_path / module.MANIFEST_NAME
    manifest.write_text(json.dumps([*json.loads(manifest.read_text()), "stale.txt"]) + "\n")
    (tmp_path / "stale.txt").write_text("left over from an older Python\n", encoding="utf-8")

    assert module.write_corpus(tmp_path) == count
    assert not (tmp_path / "stale.txt").exists()
    assert (tmp_path / "notes.txt").exists()
    for path in pydoc_corpus.glob("*.txt"):
        text = (tmp_path / path.name).read_text(encoding="utf-8")
        assert text == path.read_text(encoding="utf-8")
        assert text.endswith("\n")
