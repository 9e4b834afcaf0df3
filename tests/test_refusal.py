"""Calibrated refusal: key words, evidence, the logistic fit, --calibrate and askdoc.toml."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest

from askdoc.cli import main
from askdoc.config import load_settings
from askdoc.embedder import Embedder
from askdoc.engine import Engine, refusal_model
from askdoc.errors import ConfigError
from askdoc.evaluation import cli as eval_cli
from askdoc.evaluation.calibrate import Calibration, Point, Sample, calibrate, write_settings
from askdoc.refusal import (
    FEATURES,
    Evidence,
    RefusalModel,
    asked_type,
    fit,
    holds_type,
    key_terms,
    without_names,
)
from tests.conftest import SAMPLE_CORPUS

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("question", "keys"),
    [
        ("Where was Ilse Marrow born?", ["ilse", "marrow"]),
        ("How fast did engine No. 1411 go?", ["1411"]),
        ("What confirmed the American information about the deliveries?", []),
        ("When was the pact signed?", []),
        ("What does KV-220 weigh?", ["kv", "220"]),
    ],
)
def test_key_terms_are_names_numbers_and_codes(question: str, keys: list[str]) -> None:
    assert key_terms(question) == keys


def test_without_names_keeps_what_is_asked() -> None:
    assert without_names("Who founded The Lisk Sentinel?") == "Who founded it?"
    assert without_names("Where was Ilse Marrow born?") == "Where was it born?"
    assert without_names("How many men came home in 1742?") == "How many men came home in 1742?"


@pytest.mark.parametrize(
    ("question", "kind", "holds", "lacks"),
    [
        ("When was it signed?", "date", "It was signed on 4 March 1921.", "It was signed."),
        ("How many ships sank?", "number", "Eleven ships sank.", "Ships sank."),
        ("Why did it close?", "cause", "It closed because the mine flooded.", "It closed."),
        ("Where was Ada born?", "place", "Ada was born in Velmund.", "Ada was born early."),
        ("Who designed the bridge?", "person", "Ivo Marsk designed it.", "It was designed well."),
        ("And when did that happen?", "date", "That happened in 1901.", "That happened."),
    ],
)
def test_what_a_question_asks_for(question: str, kind: str, holds: str, lacks: str) -> None:
    assert asked_type(question) == kind
    assert holds_type(kind, holds, question) and not holds_type(kind, lacks, question)


def test_more_evidence_never_lowers_the_probability() -> None:
    model = RefusalModel()
    base = Evidence(0.8, 0.5, 0.0, 0.7, 1.0, 0.6, 0.1, 0.5, 1.0, 0.5)
    for i, name in enumerate(FEATURES):
        values = list(base.values())
        values[i] += 0.2 if name != "unknown" else -0.0
        better = model.probability(Evidence(*values))
        assert better >= model.probability(base), name
    unknown = Evidence(*[*base.values()][:2], 1.0, *[*base.values()][3:])
    assert model.probability(unknown) < model.probability(base)


def test_fit_recovers_a_separating_feature_and_drops_wrong_signs() -> None:
    rows, labels = [], []
    for i in range(60):
        answered = i % 2 == 0
        masked = 0.7 if answered else 0.3
        unknown = 0.0 if answered else (1.0 if i % 4 == 1 else 0.0)
        noise = (i % 7) / 10  # unrelated, and pointing the wrong way on purpose
        rows.append((noise, 0.5, unknown, 0.5, 0.5, 0.5, 1 - noise, 0.5, 1.0, masked))
        labels.append(answered)
    model = fit(rows, labels, use=("margin", "unknown", "masked"))
    weights = dict(zip(FEATURES, model.weights, strict=True))
    assert weights["masked"] > 1 and weights["unknown"] <= 0
    assert all(weights[f] == 0 for f in FEATURES if f not in ("margin", "unknown", "masked"))
    assert weights["margin"] >= 0  # a wrong-way weight is dropped, never kept negative
    answered = Evidence(*rows[0])
    refused = Evidence(*rows[1])
    assert model.probability(answered) > 0.5 > model.probability(refused)


def _samples() -> list[Sample]:
    out = []
    for i in range(40):
        answerable = i < 24
        masked = 0.6 + (i % 5) / 20 if answerable else 0.1 + (i % 5) / 10
        evidence = (0.8, 0.5, 0.0, 0.7, 0.5, 0.6, 0.1, 0.5, 1.0, masked)
        out.append(Sample(evidence, answerable, answerable and i % 6 != 0))
    return out


def test_calibrate_reaches_the_target_on_separable_questions() -> None:
    result = calibrate(_samples(), RefusalModel())
    assert result.fitted and result.met_target
    assert result.chosen.precision is not None and result.chosen.precision >= 0.9
    assert result.chosen.recall is not None and result.chosen.recall >= 0.8
    never = result.curve[0]
    assert never.refused == 0
    assert result.chosen.answer_contains >= never.answer_contains - 0.02  # type: ignore[operator]


def test_calibrate_keeps_the_weights_with_few_questions() -> None:
    result = calibrate(_samples()[18:30], RefusalModel())
    assert not result.fitted and result.model == RefusalModel()


def _calibration(threshold: float, fitted: bool) -> Calibration:
    point = Point(threshold, 1.0, 0.8, 0.9, 3)
    model = RefusalModel(tuple(float(i) for i in range(len(FEATURES))), -1.5)
    return Calibration(model, fitted, threshold, point, (point,), True)


def test_settings_are_written_into_askdoc_toml_keeping_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "askdoc.toml"
    path.write_text("# mine\n[askdoc]\ntop_k = 7\nmin_confidence = 0.1\n\n[other]\nx = 1\n")
    write_settings(path, _calibration(0.4321, fitted=True))
    data = tomllib.loads(path.read_text())
    assert data["askdoc"]["top_k"] == 7 and data["other"] == {"x": 1}
    assert data["askdoc"]["min_confidence"] == pytest.approx(0.4321)
    assert data["askdoc"]["refusal_weights"][-1] == -1.5
    assert path.read_text().startswith("# mine\n")
    settings = load_settings(config_file=path, environ={})
    assert settings.min_confidence == pytest.approx(0.4321)
    model = refusal_model(settings)
    assert model.bias == -1.5 and model.weights[1] == 1.0
    # a second calibration replaces the values instead of adding more
    write_settings(path, _calibration(0.25, fitted=False))
    data = tomllib.loads(path.read_text())
    assert data["askdoc"]["min_confidence"] == 0.25 and "refusal_weights" not in data["askdoc"]
    # no file yet: one is created
    fresh = tmp_path / "new.toml"
    write_settings(fresh, _calibration(0.3, fitted=False))
    assert tomllib.loads(fresh.read_text()) == {"min_confidence": 0.3}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ASKDOC_MIN_CONFIDENCE": "1.5"}, "'min_confidence' must be a number from 0 to 1"),
        ({"ASKDOC_REFUSAL_WEIGHTS": "1,2,3"}, "'refusal_weights' must be 11 numbers"),
        ({"ASKDOC_REFUSAL_WEIGHTS": "1,2,x,4,5,6,7,8,9,10,11"}, "'refusal_weights' must be 11"),
    ],
)
def test_refusal_settings_are_validated(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=env)


@pytest.mark.model
def test_calibrate_command_on_the_sample_set(
    tmp_path: Path,
    real_embedder: Embedder,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLE_CORPUS, corpus)
    config = tmp_path / "askdoc.toml"
    config.write_text("[askdoc]\ntop_k = 4\n")
    monkeypatch.setattr(eval_cli, "make_engine", lambda s: Engine(s, real_embedder))
    argv = ["eval", str(REPO / "eval" / "sample.jsonl"), "--corpus", str(corpus)]
    argv += ["--cache", str(tmp_path / "cache"), "--config", str(config), "--calibrate"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "refusal calibration · 40 questions" in out
    assert (
        "precision" in out and "recall" in out and f"written to {config}" in out.replace("\n", "")
    )
    data = tomllib.loads(config.read_text())["askdoc"]
    assert data["top_k"] == 4 and 0.0 <= data["min_confidence"] <= 1.0
    assert len(data.get("refusal_weights", [])) in (0, len(FEATURES) + 1)
    settings = load_settings(config_file=config, environ={})
    engine = Engine(settings, real_embedder)
    assert engine.answer_params.min_confidence == pytest.approx(data["min_confidence"])


def test_calibrate_needs_unanswerable_questions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import FakeEmbedder

    embedder = FakeEmbedder()
    monkeypatch.setattr(eval_cli, "make_engine", lambda s: Engine(s, embedder))
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "pets.txt").write_text("Cats purr loudly when they are happy.\n")
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"question": "What do cats do when happy?", "answers": ["purr"]}))
    config = tmp_path / "a.toml"
    config.write_text("[askdoc]\ntop_k = 3\n")
    argv = ["eval", str(qa), "--corpus", str(corpus), "--cache", str(tmp_path / "c")]
    assert main([*argv, "--calibrate", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "needs both answerable and unanswerable questions" in err
    assert config.read_text() == "[askdoc]\ntop_k = 3\n"  # nothing written
