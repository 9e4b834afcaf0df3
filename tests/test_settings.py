"""Settings are validated in one place (``askdoc.config``): a bad value from askdoc.toml, an
ASKDOC_* variable or a flag is one line naming the setting, where it came from and what is
allowed -- never a traceback, a silent default or a wrong answer. A damaged lock is one line too.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import pytest

from askdoc.cli import main
from askdoc.config import Settings, load_settings
from askdoc.engine import Engine
from askdoc.errors import ConfigError
from tests.conftest import SAMPLE_CORPUS, FakeEmbedder

QUESTION = "Who signed the strategic partnership agreement?"


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A built index of the sample corpus (fake embedder); the CLI's --corpus/--index flags."""
    monkeypatch.setattr("askdoc.engine.Embedder", lambda *_args, **_kwargs: FakeEmbedder())
    for name in list(os.environ):
        if name.startswith("ASKDOC_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    shutil.copytree(SAMPLE_CORPUS, tmp_path / "corpus")
    flags = ["--corpus", str(tmp_path / "corpus"), "--index", str(tmp_path / "index")]
    assert main([*flags, "index"]) == 0
    return flags


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == "", captured.out
    err = captured.err
    assert err.startswith("askdoc: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err.strip()


@pytest.mark.parametrize("kind", ["folder", "symbolic link", "FIFO"])
def test_a_damaged_lock_is_one_line_not_a_traceback(
    folders: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    lock = tmp_path / "index" / ".lock"
    lock.unlink()
    if kind == "folder":
        lock.mkdir()
    elif kind == "symbolic link":
        lock.symlink_to(tmp_path / "elsewhere")
    else:
        os.mkfifo(lock)
    capsys.readouterr()
    assert main([*folders, "index"]) == 1
    err = one_error_line(capsys)
    shown = "not a regular file" if kind == "FIFO" else f"a {kind}"
    assert f"{lock} is {shown}, not askdoc's lock file: remove it" in err
    assert not (tmp_path / "elsewhere").exists()
    lock.rmdir() if kind == "folder" else lock.unlink()
    assert main([*folders, "index"]) == 0  # the lock file is made again


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-k", "-3"], "-k: setting 'top_k' must be a whole number from 1 to 1000, not -3"),
        (["-k", "0"], "-k: setting 'top_k' must be a whole number from 1 to 1000, not 0"),
        (["-k", "5000"], "-k: setting 'top_k' must be a whole number from 1 to 1000, not 5000"),
    ],
)
def test_a_bad_k_is_refused_not_answered(
    folders: list[str], args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main([*folders, "ask", QUESTION, *args]) == 1
    assert one_error_line(capsys) == f"askdoc: {expected}"
    assert main([*folders, "ask", QUESTION, "-k", "2"]) == 0
    assert "[2]" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("MIN_CONFIDENCE", "nan", "a number from 0 to 1"),
        ("MIN_CONFIDENCE", "-1", "a number from 0 to 1"),
        ("FILE_TIMEOUT", "inf", "a number above 0"),
        ("MAX_FILE_MB", "nan", "a number above 0"),
        ("TOP_K", "2.5", "a whole number from 1 to 1000"),
        ("TOP_K", "many", "a whole number from 1 to 1000"),
        ("EXACT_BELOW", "-1", "a whole number from 0"),
        ("INDEX_THREADS", "-2", "a whole number from 0"),
        ("MAX_LINE_CHARS", "0", "a whole number from 1000"),
        ("CHUNK_OVERLAP", "500", "a whole number from 0 to chunk_tokens - 1 (199)"),
        ("MODE", "fuzzy", "one of hybrid, dense, lexical"),
    ],
)
def test_a_bad_environment_setting_is_one_line_naming_it(
    folders: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
    allowed: str,
) -> None:
    monkeypatch.setenv(f"ASKDOC_{name}", value)
    capsys.readouterr()
    assert main([*folders, "ask", QUESTION]) == 1
    assert one_error_line(capsys) == (
        f"askdoc: ASKDOC_{name}: setting {name.lower()!r} must be {allowed}, not {value!r}"
    )


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("top_k = true", "setting 'top_k' must be a whole number from 1 to 1000, not True"),
        ("top_k = 2.5", "setting 'top_k' must be a whole number from 1 to 1000, not 2.5"),
        ("min_confidence = nan", "setting 'min_confidence' must be a number from 0 to 1, not nan"),
        ("topk = 3", "unknown setting 'topk'"),
    ],
)
def test_a_bad_setting_in_askdoc_toml_names_the_file(
    folders: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    toml: str,
    expected: str,
) -> None:
    (tmp_path / "askdoc.toml").write_text(f"[askdoc]\n{toml}\n")
    capsys.readouterr()
    assert main([*folders, "ask", QUESTION]) == 1
    err = one_error_line(capsys)
    assert err.startswith("askdoc: askdoc.toml: ") and expected in err, err


def test_a_config_path_that_is_a_folder_or_missing_is_refused(
    folders: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "conf").mkdir()
    monkeypatch.setenv("ASKDOC_CONFIG", str(tmp_path / "conf"))
    capsys.readouterr()
    assert main([*folders, "status"]) == 1
    assert one_error_line(capsys) == (
        f"askdoc: ASKDOC_CONFIG: {tmp_path / 'conf'} is a folder, not a settings file"
    )
    monkeypatch.setenv("ASKDOC_CONFIG", str(tmp_path / "missing.toml"))
    assert main([*folders, "status"]) == 1
    assert one_error_line(capsys) == (
        f"askdoc: ASKDOC_CONFIG: there is no settings file {tmp_path / 'missing.toml'}"
    )
    monkeypatch.delenv("ASKDOC_CONFIG")
    assert main([*folders, "--config", str(tmp_path / "conf"), "status"]) == 1
    assert one_error_line(capsys) == (
        f"askdoc: --config: {tmp_path / 'conf'} is a folder, not a settings file"
    )
    (tmp_path / "askdoc.toml").mkdir()  # the default file, found as a folder
    assert main([*folders, "status"]) == 1
    assert one_error_line(capsys) == "askdoc: askdoc.toml is a folder, not a settings file"


def test_the_library_validates_the_same_way(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="setting 'top_k' must be a whole number from 1"):
        Settings().with_overrides(top_k=0)
    settings = load_settings(environ={"ASKDOC_MIN_CONFIDENCE": "0.25"}, config_file=None)
    assert math.isclose(settings.min_confidence, 0.25)
    engine = Engine(Settings(corpus=tmp_path, index=tmp_path / "index"), FakeEmbedder())
    with pytest.raises(ConfigError, match="setting 'top_k' must be a whole number from 1"):
        engine.ask(QUESTION, k=-3)
