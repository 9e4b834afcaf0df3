"""A client for any OpenAI-compatible chat-completions server (Ollama, llama.cpp, vLLM): one
request, streamed token by token, with timeouts, cancellation and one-line errors."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from askdoc.errors import LLMError

Message = dict[str, str]


@dataclass(frozen=True)
class LLMConfig:
    """Where the model is and how long to wait for it (the ``llm_*`` settings)."""

    url: str
    """Base URL of the server's OpenAI-compatible API, e.g. ``http://localhost:11434/v1``
    (Ollama) or ``http://127.0.0.1:8080/v1`` (llama.cpp); ``/v1`` is added when missing."""
    model: str = ""
    """Model name sent with each request; empty: the first one the server lists."""
    api_key: str = ""
    """Sent as ``Authorization: Bearer ...`` when set."""
    timeout: float = 60.0
    """Seconds to wait to connect, for the first token and between two tokens."""
    max_tokens: int = 256
    """Most tokens the model may write for one answer."""


@dataclass(frozen=True)
class Completion:
    """What the model wrote, and how fast."""

    text: str
    model: str
    tokens: int
    """Tokens generated (as the server counts them, else one per streamed piece)."""
    first_token_s: float
    """Seconds from sending the request to the first piece of text."""
    seconds: float
    """Seconds from sending the request to the end of the answer."""
    finish_reason: str = ""
    cancelled: bool = False

    @property
    def tokens_per_s(self) -> float:
        """Generation speed after the first token (prompt reading excluded)."""
        span = self.seconds - self.first_token_s
        return (self.tokens - 1) / span if self.tokens > 1 and span > 0 else 0.0


class Cancel:
    """Stops a request from another thread: the connection is shut down at once, so even a
    server still reading the prompt lets go."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()
        with self._lock:
            if self._sock is not None:
                try:
                    self._sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def attach(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._sock = sock
        if sock is not None and self.cancelled:
            self.set()


class ChatClient:
    """Chat completions over HTTP with the standard library only."""

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        parts = urlsplit(config.url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise LLMError(
                f"llm_url must be an http(s) URL like http://127.0.0.1:8080/v1, not {config.url!r}"
            )
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        path = parts.path.rstrip("/")
        self._base = path if path.endswith("/v1") else f"{path}/v1"
        self._model = config.model

    @property
    def where(self) -> str:
        """The server, as named in messages."""
        return self.config.url

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=self.config.timeout)

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        return headers

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None, cancel: Cancel | None = None
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        conn = self._connect()
        try:
            conn.connect()
            if cancel is not None:
                cancel.attach(conn.sock)
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, self._base + path, body=data, headers=self._headers())
            response = conn.getresponse()
        except BaseException as exc:
            conn.close()
            if cancel is not None and cancel.cancelled:
                raise LLMCancelled() from None
            raise self._error(exc) from None
        if response.status != 200:
            detail = _error_detail(response.read(2000))
            conn.close()
            raise LLMError(
                f"the language model at {self.where} answered HTTP {response.status}"
                + (f": {detail}" if detail else "")
            )
        return conn, response

    def _error(self, exc: BaseException) -> LLMError:
        if isinstance(exc, TimeoutError | socket.timeout):
            return LLMError(
                f"the language model at {self.where} did not answer within "
                f"{self.config.timeout:g} s"
            )
        if isinstance(exc, ConnectionRefusedError):
            return LLMError(f"cannot reach the language model at {self.where}: connection refused")
        if isinstance(exc, OSError | http.client.HTTPException):
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            return LLMError(f"cannot reach the language model at {self.where}: {reason}")
        if isinstance(exc, LLMError):
            return exc
        return LLMError(f"the language model at {self.where} failed: {type(exc).__name__}: {exc}")

    def models(self) -> list[str]:
        """The model names the server lists (``GET /v1/models``)."""
        conn, response = self._request("GET", "/models", None)
        try:
            payload = _json(response.read(), self.where)
        except OSError as exc:
            raise self._error(exc) from None
        finally:
            conn.close()
        data = payload.get("data") if isinstance(payload, dict) else None
        return [str(m.get("id")) for m in data or [] if isinstance(m, dict) and m.get("id")]

    def model_name(self) -> str:
        """The configured model, else the first the server lists."""
        if not self._model:
            names = self.models()
            if not names:
                raise LLMError(f"the language model server at {self.where} lists no model")
            self._model = names[0]
        return self._model

    def stream(
        self,
        messages: Sequence[Message],
        cancel: Cancel | None = None,
        max_tokens: int | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Iterator[str]:
        """The answer's text, piece by piece as the server sends it (server-sent events). Ends
        quietly when ``cancel`` is set; raises ``LLMError`` (one line) on any failure. ``meta``
        receives the server's ``usage`` and ``finish_reason`` when it sends them."""
        meta = {} if meta is None else meta
        body = {
            "model": self.model_name(),
            "messages": list(messages),
            "stream": True,
            "max_tokens": max_tokens or self.config.max_tokens,
            "temperature": 0.0,
        }
        try:
            conn, response = self._request("POST", "/chat/completions", body, cancel)
        except LLMCancelled:
            return
        try:
            for payload in _events(response):
                if payload == "[DONE]":
                    break
                data = _json(payload.encode(), self.where)
                if not isinstance(data, dict):
                    continue
                if isinstance(data.get("usage"), dict):
                    meta["usage"] = data["usage"]
                for choice in data.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        yield str(piece)
                    if choice.get("finish_reason"):
                        meta["finish_reason"] = str(choice["finish_reason"])
        except (OSError, http.client.HTTPException) as exc:
            if cancel is None or not cancel.cancelled:
                raise self._error(exc) from None
        finally:
            conn.close()

    def complete(
        self,
        messages: Sequence[Message],
        on_text: Callable[[str], None] | None = None,
        cancel: Cancel | None = None,
        max_tokens: int | None = None,
    ) -> Completion:
        """Stream an answer to its end, calling ``on_text(piece)`` for each piece."""
        meta: dict[str, Any] = {}
        started = time.perf_counter()
        first = 0.0
        pieces: list[str] = []
        for piece in self.stream(messages, cancel, max_tokens, meta):
            if not pieces:
                first = time.perf_counter() - started
            pieces.append(piece)
            if on_text is not None:
                on_text(piece)
        seconds = time.perf_counter() - started
        usage = meta.get("usage") or {}
        tokens = len(pieces)
        if isinstance(usage.get("completion_tokens"), int):
            tokens = max(tokens, int(usage["completion_tokens"]))
        return Completion(
            "".join(pieces),
            self._model,
            tokens,
            first or seconds,
            seconds,
            str(meta.get("finish_reason", "")),
            cancel is not None and cancel.cancelled,
        )


class LLMCancelled(Exception):
    """The request was cancelled before the server answered."""


def _events(response: http.client.HTTPResponse) -> Iterator[str]:
    """The ``data:`` payloads of a server-sent event stream."""
    buffer: list[str] = []
    while True:
        raw = response.readline()
        if not raw:
            break
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not line:
            if buffer:
                yield "\n".join(buffer)
                buffer = []
            continue
        if line.startswith("data:"):
            buffer.append(line[5:].lstrip())
    if buffer:
        yield "\n".join(buffer)


def _json(raw: bytes, where: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise LLMError(f"the language model at {where} sent something that is not JSON") from None


def _error_detail(raw: bytes) -> str:
    """The server's own error message, on one line and short."""
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        text = raw.decode("utf-8", errors="replace")
    else:
        error = payload.get("error") if isinstance(payload, dict) else None
        text = error.get("message", "") if isinstance(error, dict) else str(error or "")
    return " ".join(text.split())[:200]
