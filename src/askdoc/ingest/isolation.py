"""Reading untrusted files in a separate process, under a time and a memory limit.

A build hands each file to a persistent worker process (``read_worker``) that
opens it safely, parses it and chunks it. A file that takes longer than ``file_timeout`` seconds
gets its worker killed and is skipped ("took longer than N s to read"); a worker that crashes or
runs out of memory costs only the file it was reading. A fresh worker starts for the next file.

The worker is a fresh interpreter (no fork of a process that may hold torch or FAISS threads), in
its own session (a Ctrl-C in the terminal reaches the build, which stops the worker), and dies
with its parent. Requests and replies are frames on pipes, an 8-byte big-endian length and UTF-8
JSON (``encode_frame``, the protocol of both sides): nothing is unpickled.
Idle workers are kept per configuration and reused by later builds in the same process.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from askdoc.errors import AskdocError, ReadError, TransientReadError
from askdoc.ingest.chunking import ChunkSettings
from askdoc.ingest.readers import FileEntry
from askdoc.tokens import TokenCounter
from askdoc.types import Chunk, Document, Heading

STARTUP_TIMEOUT = 120.0
"""Seconds a new worker may take to start (imports and tokenizer), not counted per file."""
MEMORY_FLOOR = 2 << 30
"""Address space a worker may use at least; more for a high size cap (48 bytes per byte)."""
HEADER = struct.Struct(">Q")
"""A frame's length, before its UTF-8 JSON."""


def encode_frame(obj: Any) -> bytes:
    """One frame: the length, then ``obj`` as UTF-8 JSON (lone surrogates of file names kept)."""
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    data = body.encode("utf-8", "surrogatepass")
    return HEADER.pack(len(data)) + data


def decode_frame(data: bytes) -> Any:
    """The JSON value of one frame's body."""
    return json.loads(data.decode("utf-8", "surrogatepass"))


@dataclass(frozen=True)
class ReadResult:
    """One file read, parsed and chunked: what was indexed and the bytes it came from."""

    document: Document
    chunks: tuple[Chunk, ...]
    sha256: str
    size: int
    mtime: float


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker needs: the size cap, how passages are measured and chunk settings."""

    max_bytes: int
    tokens: TokenCounter
    chunking: ChunkSettings
    max_line_chars: int = 1_000_000

    @property
    def memory_limit(self) -> int:
        return max(MEMORY_FLOOR, 48 * self.max_bytes)

    def to_json(self) -> dict[str, Any]:
        return {
            "max_bytes": self.max_bytes,
            "tokens": self.tokens.to_json(),
            "chunking": asdict(self.chunking),
            "memory_limit": self.memory_limit,
            "max_line_chars": self.max_line_chars,
        }


class _Stopped(Exception):
    """The worker closed its pipe (crashed or was killed)."""


class _TimedOut(Exception):
    """No complete reply before the deadline."""


class IsolatedReader:
    """A worker process reading one file at a time under ``timeout`` seconds per file."""

    def __init__(self, config: WorkerConfig, timeout: float) -> None:
        self.config = config
        self.timeout = timeout
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def read(self, entry: FileEntry) -> ReadResult:
        """Read, parse and chunk ``entry``; ReadError with a one-line reason on any problem."""
        request = {"path": entry.path, "abspath": str(entry.abspath)}
        for attempt in (1, 2):
            proc = self._ensure_started()
            try:
                _write_frame(proc, request)
            except (BrokenPipeError, OSError):  # died while idle: start afresh, once
                self._stop()
                if attempt == 2:
                    raise TransientReadError("the reader process could not be started") from None
                continue
            return self._await_reply(proc, entry)
        raise AssertionError("unreachable")  # pragma: no cover

    def _await_reply(self, proc: subprocess.Popen[bytes], entry: FileEntry) -> ReadResult:
        try:
            reply = _read_frame(proc, time.monotonic() + self.timeout)
        except _TimedOut:
            self._stop()
            raise ReadError(f"took longer than {self.timeout:g} s to read") from None
        except _Stopped:
            code = self._stop()
            reason = f"the reader process stopped ({_exit_reason(code)})"
            if code in (-signal.SIGABRT, -signal.SIGKILL, -signal.SIGSEGV):
                limit = self.config.memory_limit / (1 << 30)
                reason += f", probably out of memory (it may use {limit:.3g} GiB)"
            raise ReadError(reason) from None
        if not reply.get("ok"):
            error = TransientReadError if reply.get("retry") else ReadError
            raise error(str(reply.get("reason") or "unreadable"))
        return _result_from_json(entry.path, reply)

    def _ensure_started(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        if self._proc is not None:
            self._stop()
        proc = subprocess.Popen(
            [sys.executable, "-m", "askdoc.ingest.read_worker", str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env=_worker_env(),
        )
        self._proc = proc
        try:
            _write_frame(proc, self.config.to_json())
            ready = _read_frame(proc, time.monotonic() + STARTUP_TIMEOUT)
        except (_TimedOut, _Stopped, OSError):
            code = self._stop()
            raise AskdocError(
                f"cannot start the document reader process ({_exit_reason(code)})"
            ) from None
        if not ready.get("ready"):
            self._stop()
            raise AskdocError(f"cannot start the document reader process: {ready.get('error')}")
        return proc

    def _stop(self) -> int | None:
        """Kill the worker (if running) and reap it; its exit status."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.kill()
        code = proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()
        return code

    def close(self) -> None:
        """Ask the worker to exit (end of input), then make sure it has."""
        proc = self._proc
        if proc is None:
            return
        if proc.stdin is not None:
            try:
                proc.stdin.close()
            except OSError:
                self._stop()
                return
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._stop()
            return
        self._stop()

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None


_IDLE: dict[tuple[WorkerConfig, float], list[IsolatedReader]] = {}
_IDLE_LOCK = threading.Lock()
_OWNER = os.getpid()


@contextmanager
def isolated_reader(config: WorkerConfig, timeout: float) -> Iterator[IsolatedReader]:
    """An IsolatedReader for the duration of a build; an idle one of this process is reused."""
    key = (config, timeout)
    with _IDLE_LOCK:
        pool = _IDLE.get(key, []) if os.getpid() == _OWNER else []
        reader = pool.pop() if pool else IsolatedReader(config, timeout)
    try:
        yield reader
    except BaseException:
        reader.close()
        raise
    if os.getpid() == _OWNER and reader.alive:
        with _IDLE_LOCK:
            _IDLE.setdefault(key, []).append(reader)
    else:
        reader.close()


@atexit.register
def close_idle_readers() -> None:
    """Stop every idle worker of this process."""
    with _IDLE_LOCK:
        readers = [r for pool in _IDLE.values() for r in pool]
        _IDLE.clear()
    for reader in readers:
        reader.close()


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    env["TOKENIZERS_PARALLELISM"] = "false"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "no process"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


# --- the parent's side of the pipes -----------------------------------------------------------


def _write_frame(proc: subprocess.Popen[bytes], obj: Any) -> None:
    assert proc.stdin is not None
    proc.stdin.write(encode_frame(obj))
    proc.stdin.flush()


def _read_frame(proc: subprocess.Popen[bytes], deadline: float) -> dict[str, Any]:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    (length,) = HEADER.unpack(_read_exact(fd, HEADER.size, deadline))
    reply = decode_frame(_read_exact(fd, length, deadline))
    if not isinstance(reply, dict):
        raise _Stopped("malformed reply")
    return reply


def _read_exact(fd: int, size: int, deadline: float) -> bytes:
    buffer = bytearray()
    while len(buffer) < size:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _TimedOut
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            raise _TimedOut
        block = os.read(fd, min(size - len(buffer), 1 << 20))
        if not block:
            raise _Stopped
        buffer += block
    return bytes(buffer)


def _result_from_json(path: str, reply: dict[str, Any]) -> ReadResult:
    raw = reply["document"]
    document = Document(
        path=path,
        text=str(raw["text"]),
        kind=str(raw["kind"]),
        headings=tuple(Heading(int(o), int(lv), str(t)) for o, lv, t in raw["headings"]),
        page_starts=tuple(int(p) for p in raw["page_starts"]),
        notes=tuple(str(n) for n in raw["notes"]),
    )
    text = document.text
    chunks = []
    for ordinal, start, end, line_start, line_end, page, heading in reply["chunks"]:
        if not 0 <= start <= end <= len(text):
            raise ReadError("the reader process returned an invalid passage")
        chunks.append(
            Chunk(path, ordinal, text[start:end], start, end, line_start, line_end, page, heading)
        )
    return ReadResult(
        document, tuple(chunks), str(reply["sha256"]), int(reply["size"]), float(reply["mtime"])
    )
