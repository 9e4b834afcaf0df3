"""Where a setting comes from: flags > ASKDOC_* environment > askdoc.toml > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from askdoc.config import Settings, load_settings


@pytest.fixture
def toml(tmp_path: Path) -> Path:
    path = tmp_path / "askdoc.toml"
    path.write_text('[askdoc]\ntop_k = 7\nmode = "dense"\nmin_confidence = 0.3\n')
    return path


def test_defaults_when_nothing_is_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert (settings.top_k, settings.mode, settings.min_confidence) == (
        Settings().top_k,
        Settings().mode,
        Settings().min_confidence,
    )


def test_toml_overrides_defaults(toml: Path) -> None:
    settings = load_settings(config_file=toml, environ={})
    assert (settings.top_k, settings.mode, settings.min_confidence) == (7, "dense", 0.3)
    assert settings.extra["config_file"] == str(toml)


def test_environment_overrides_toml(toml: Path) -> None:
    env = {"ASKDOC_TOP_K": "9", "ASKDOC_MODE": "lexical"}
    settings = load_settings(config_file=toml, environ=env)
    assert (settings.top_k, settings.mode, settings.min_confidence) == (9, "lexical", 0.3)


def test_flags_override_environment_and_toml(toml: Path) -> None:
    env = {"ASKDOC_TOP_K": "9", "ASKDOC_MODE": "lexical"}
    settings = load_settings(config_file=toml, environ=env, top_k=3, mode=None)
    assert (settings.top_k, settings.mode) == (3, "lexical")  # a None flag is "not given"


def test_askdoc_config_names_the_file(
    toml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path / "..")
    settings = load_settings(environ={"ASKDOC_CONFIG": str(toml)})
    assert settings.top_k == 7


def test_an_empty_environment_value_is_not_set(toml: Path) -> None:
    assert load_settings(config_file=toml, environ={"ASKDOC_TOP_K": ""}).top_k == 7
