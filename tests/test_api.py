"""The library API: docs/api.md's examples run as written (real model), and ``askdoc.open``,
``Engine.search`` and the lazy ``import askdoc`` behave as documented."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import askdoc
from askdoc.config import Settings
from askdoc.embedder import Embedder
from askdoc.engine import Engine
from tests.conftest import REPO, SAMPLE_CORPUS, FakeEmbedder

API_DOC = REPO / "docs" / "api.md"
BLOCK = re.compile(r"^```(python|output)\n(.*?)^```$", re.M | re.S)


def doc_examples(text: str) -> list[tuple[str, str | None]]:
    """(code, expected output or None) for every python block, in order; an ``output`` block
    belongs to the python block just before it."""
    examples: list[tuple[str, str | None]] = []
    for kind, body in BLOCK.findall(text):
        if kind == "python":
            examples.append((body, None))
        else:
            assert examples and examples[-1][1] is None, "an output block without its example"
            examples[-1] = (examples[-1][0], body)
    return examples


def test_doc_examples_are_found() -> None:
    text = "```python\nprint(1)\n```\n\n```output\n1\n```\n```python\nx = 2\n```\n"
    assert doc_examples(text) == [("print(1)\n", "1\n"), ("x = 2\n", None)]


@pytest.mark.model
def test_api_doc_examples_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, real_embedder: Embedder
) -> None:
    shutil.copytree(SAMPLE_CORPUS, tmp_path / "corpus")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("askdoc.engine.Embedder", lambda *_args, **_kwargs: real_embedder)
    examples = doc_examples(API_DOC.read_text(encoding="utf-8"))
    assert len(examples) >= 6
    namespace: dict[str, object] = {"__name__": "api_doc"}
    for number, (code, expected) in enumerate(examples, 1):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, f"docs/api.md example {number}", "exec"), namespace)
        if expected is not None:
            assert out.getvalue() == expected, f"example {number} printed:\n{out.getvalue()}"


def test_import_askdoc_is_light(tmp_path: Path) -> None:
    probe = (
        "import json, sys\nimport askdoc\nengine = askdoc.open('index', corpus='corpus')\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    loaded = {m.split(".")[0] for m in json.loads(done.stdout)}
    assert not loaded & {"torch", "sentence_transformers", "transformers", "faiss"}
    assert not (tmp_path / "index").exists()  # opening reads nothing and creates nothing


def test_api_names_are_exported() -> None:
    assert askdoc.Engine is Engine
    assert askdoc.Settings is Settings
    assert issubclass(askdoc.NoIndexError, askdoc.AskdocError)
    assert {"open", "Answer", "Source", "BuildReport", "Status"} <= set(dir(askdoc))
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = askdoc.nothing  # type: ignore[attr-defined]


def test_open_applies_config_then_keywords(tmp_path: Path) -> None:
    config = tmp_path / "my.toml"
    config.write_text("[askdoc]\ntop_k = 7\nmode = 'lexical'\n", encoding="utf-8")
    engine = askdoc.open(tmp_path / "ix", tmp_path / "docs", config=config, top_k=2)
    assert engine.settings.index == tmp_path / "ix"
    assert engine.settings.corpus == tmp_path / "docs"
    assert (engine.settings.top_k, engine.settings.mode) == (2, "lexical")
    assert askdoc.open("ix").settings.top_k == Settings().top_k


def test_open_ignores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASKDOC_TOP_K", "9")
    assert askdoc.open("ix").settings.top_k == Settings().top_k


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"config": "missing.toml"}, "does not exist"),
        ({"top_k": 0}, "must be a whole number from 1 to 1000"),
        ({"colour": "blue"}, "unknown setting 'colour'"),
        ({"mode": "psychic"}, "setting .mode. must be one of"),
    ],
)
def test_open_rejects_bad_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, object], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(askdoc.ConfigError, match=message):
        askdoc.open("ix", **kwargs)  # type: ignore[arg-type]


def test_ask_before_build_names_the_fix(tmp_path: Path) -> None:
    with askdoc.open(tmp_path / "ix", SAMPLE_CORPUS, embedder=FakeEmbedder()) as engine:
        with pytest.raises(askdoc.NoIndexError, match="run `askdoc index`"):
            engine.ask("Who signed the pact?")


def test_search_returns_numbered_sources(fake_engine: Engine) -> None:
    fake_engine.build()
    sources = fake_engine.search("satellite images of ammunition containers", k=3)
    assert [s.number for s in sources] == list(range(1, len(sources) + 1))
    assert 1 <= len(sources) <= 3
    for source in sources:
        document = fake_engine.document(source.path)
        assert document is not None
        assert document.text[source.start : source.end] == source.text
        assert source.highlight is None and source.highlights == ()
    assert "satellite images" in sources[0].text
    assert askdoc.source_json(sources[0], fake_engine.settings.corpus)["id"] == 1


def test_lexical_search_needs_no_model(settings: Settings) -> None:
    builder = FakeEmbedder()
    Engine(settings, builder).build()
    fresh = FakeEmbedder()
    with Engine(settings, fresh) as engine:
        sources = engine.search("Shin Won-sik", mode="lexical")
    assert sources and "Shin Won-sik" in sources[0].text
    assert not fresh.loaded and fresh.encoded == []


def test_search_refuses_what_ask_refuses(fake_engine: Engine) -> None:
    fake_engine.build()
    with pytest.raises(askdoc.QuestionError):
        fake_engine.search("?!")
    with pytest.raises(askdoc.ConfigError, match="mode must be one of"):
        fake_engine.search("containers", mode="psychic")


def test_engine_closes_as_a_context_manager(fake_engine: Engine) -> None:
    fake_engine.build()
    with fake_engine as engine:
        engine.ask("How many containers were delivered?")
        assert engine._reader is not None
    assert fake_engine._reader is None
    assert fake_engine.ask("How many containers were delivered?").sources  # reopens
