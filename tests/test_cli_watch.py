"""``askdoc index --watch`` as a user runs it: a process that follows the corpus and stops on
Ctrl+C between commits (a second Ctrl+C stops at once). The fake embedder stands in for the
model; a hold file can pause the first embedding batch so a signal lands mid-build."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from askdoc.cli import main
from askdoc.config import Settings
from askdoc.engine import Engine
from askdoc.index.manifest import read_manifest
from askdoc.index.schema import DB_NAME, connect, list_documents
from tests.conftest import REPO, FakeEmbedder

WAIT = 60.0

RUNNER = """
import os, sys, time
from pathlib import Path
sys.path[:0] = [{repo!r}, {src!r}]
import askdoc.engine
from tests.conftest import FakeEmbedder

hold = os.environ.get("ASKDOC_TEST_HOLD")


class Embedder(FakeEmbedder):
    def encode(self, texts, batch_size=32, progress=None):
        if hold:
            Path(hold + ".entered").touch()
            while not Path(hold).exists():
                time.sleep(0.02)
        return super().encode(texts, batch_size, progress)


askdoc.engine.Embedder = lambda *_args, **_kwargs: Embedder()
from askdoc.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


class Process:
    """``askdoc`` in a child process, its output lines collected by threads as they come."""

    def __init__(self, settings: Settings, *args: str, hold: Path | None = None) -> None:
        code = RUNNER.format(repo=str(REPO), src=str(REPO / "src"))
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        if hold is not None:
            env["ASKDOC_TEST_HOLD"] = str(hold)
        paths = ["--corpus", str(settings.corpus), "--index", str(settings.index)]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, *args, *paths],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.out: queue.Queue[str] = queue.Queue()
        self.err: queue.Queue[str] = queue.Queue()
        self.lines: list[str] = []
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True).start()

    @staticmethod
    def _pump(stream: object, sink: queue.Queue[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            sink.put(line)

    def wait_line(self, sink: queue.Queue[str], text: str) -> str:
        deadline = time.monotonic() + WAIT
        while True:
            line = sink.get(timeout=max(0.1, deadline - time.monotonic()))
            self.lines.append(line)
            if text in line:
                return line

    def finish(self) -> tuple[int, str]:
        code = self.proc.wait(WAIT)
        time.sleep(0.1)  # let the pumps drain what is left
        rest = []
        while not self.err.empty():
            rest.append(self.err.get())
        return code, "".join(rest)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.kill()


def documents(settings: Settings) -> set[str]:
    conn = connect(settings.index / DB_NAME)
    try:
        return set(list_documents(conn))
    finally:
        conn.close()


def published(settings: Settings) -> bool:
    conn = connect(settings.index / DB_NAME)
    try:
        return read_manifest(conn, settings.index / DB_NAME) is not None
    finally:
        conn.close()


def wait_for(path: Path) -> None:
    deadline = time.monotonic() + WAIT
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_watch_follows_the_corpus_and_stops_on_ctrl_c(
    settings: Settings, processes: list[Process]
) -> None:
    watcher = Process(settings, "index", "--watch")
    processes.append(watcher)
    watcher.wait_line(watcher.out, "added 1")  # the first build's report
    watcher.wait_line(watcher.err, "watching")
    (settings.corpus / "depot.txt").write_text("The depot ships grain on Tuesdays.\n")
    line = watcher.wait_line(watcher.out, "Indexed")
    assert line[:9].count(":") == 2  # later builds carry the time: "12:03:44 Indexed ..."
    watcher.wait_line(watcher.out, "added 1")
    assert documents(settings) == {"north-korea-russia-alliance.txt", "depot.txt"}
    watcher.proc.send_signal(signal.SIGINT)
    code, err = watcher.finish()
    assert code == 0
    assert "askdoc: stopped watching\n" in err


def test_ctrl_c_during_a_build_stops_before_publishing(
    settings: Settings, processes: list[Process], tmp_path: Path
) -> None:
    hold = tmp_path / "release"
    watcher = Process(settings, "index", "--watch", hold=hold)
    processes.append(watcher)
    wait_for(Path(f"{hold}.entered"))  # the first build is embedding its first batch
    watcher.proc.send_signal(signal.SIGINT)
    watcher.wait_line(watcher.err, "stopping at the next safe point")
    hold.touch()
    code, err = watcher.finish()
    assert code == 0
    assert "before a build was published" in err
    assert not published(settings)  # nothing half-done is visible
    report = Engine(settings, FakeEmbedder()).build()  # the next build completes
    assert report.documents == 1 and published(settings)


def test_second_ctrl_c_stops_at_once(
    settings: Settings, processes: list[Process], tmp_path: Path
) -> None:
    Engine(settings, FakeEmbedder()).build()
    hold = tmp_path / "release"
    (settings.corpus / "new.txt").write_text("A new note about tungsten.\n")
    watcher = Process(settings, "index", "--watch", hold=hold)
    processes.append(watcher)
    wait_for(Path(f"{hold}.entered"))
    watcher.proc.send_signal(signal.SIGINT)
    watcher.wait_line(watcher.err, "stopping at the next safe point")
    watcher.proc.send_signal(signal.SIGINT)
    code, err = watcher.finish()
    assert code == 130 and "askdoc: interrupted" in err
    assert documents(settings) == {"north-korea-russia-alliance.txt"}  # last build still served
    assert Engine(settings, FakeEmbedder()).ask("What is the note about tungsten?").sources


def test_watch_and_dry_run_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["index", "--watch", "--dry-run"])
    assert exc.value.code == 2
    assert "--watch and --dry-run do not go together" in capsys.readouterr().err


def test_watch_of_a_missing_corpus_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["index", "--watch", "--corpus", str(tmp_path / "none"), "--index", str(tmp_path)])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("askdoc: corpus folder ") and "does not exist" in err


@pytest.mark.parametrize(
    ("argv", "watched"), [([], False), (["--watch"], True), (["chat", "--watch"], True)]
)
def test_chat_watch_flag(
    argv: list[str], watched: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[bool] = []

    def run_app(settings: Settings, watch: bool = False) -> int:
        calls.append(watch)
        return 0

    monkeypatch.setattr("askdoc.tui.run_app", run_app)
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 0
    assert calls == [watched]
