"""The isolated reader process: ``python -m askdoc.ingest.read_worker <parent pid>``.

It reads a configuration frame, loads the token counter (``tokens``: the model's tokenizer.json,
no model), lowers its own address-space limit, says it is ready, then answers one request per
file: open safely, parse, chunk, reply with the document, its passages and the sha256, size and
mtime of the bytes it read. Frames are an 8-byte big-endian length and UTF-8 JSON
(``isolation.encode_frame``: nothing is unpickled). It exits at the end of its input or with its
parent. See ``isolation`` for the parent's side.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import signal
import sys
from pathlib import Path
from typing import Any, BinaryIO

from askdoc.errors import AskdocError, ReadError, TransientReadError
from askdoc.ingest.chunking import ChunkSettings, chunk_document
from askdoc.ingest.isolation import HEADER, decode_frame, encode_frame
from askdoc.ingest.readers import FileEntry, parse_document, read_bytes
from askdoc.text import describe_error
from askdoc.tokens import TokenCounter


def _die_with_parent(parent: int) -> None:
    """Linux: get SIGKILL when the parent dies; everywhere: stop if it is already gone."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: end of input still stops the worker when the parent dies
    if os.getppid() != parent:
        os._exit(0)


def _preload() -> None:
    """Import the parser libraries before the first file: its time limit measures the file."""
    for module in ("bs4", "pypdf", "docx", "markdown_it"):
        try:
            importlib.import_module(module)
        except ImportError:
            continue  # files of that format then fail on their own, each with a reason


def _limit_memory(limit: int) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard == resource.RLIM_INFINITY or hard > limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _read_one(request: dict[str, Any], config: dict[str, Any], count: Any) -> dict[str, Any]:
    entry = FileEntry(str(request["path"]), Path(request["abspath"]), 0, 0.0)
    max_bytes = int(config["max_bytes"])
    raw = read_bytes(entry, max_bytes)
    document = parse_document(entry.path, raw.data, max_bytes)
    settings = ChunkSettings(**config["chunking"])
    chunks = chunk_document(document, count, settings, int(config["max_line_chars"]))
    return {
        "ok": True,
        "sha256": hashlib.sha256(raw.data).hexdigest(),
        "size": raw.size,
        "mtime": raw.mtime,
        "document": {
            "text": document.text,
            "kind": document.kind,
            "headings": [[h.offset, h.level, h.title] for h in document.headings],
            "page_starts": list(document.page_starts),
            "notes": list(document.notes),
        },
        "chunks": [
            [c.ordinal, c.start, c.end, c.line_start, c.line_end, c.page, c.heading] for c in chunks
        ],
    }


def _reply(request: dict[str, Any], config: dict[str, Any], count: Any) -> bytes:
    try:
        return encode_frame(_read_one(request, config, count))
    except TransientReadError as exc:
        return encode_frame({"ok": False, "reason": str(exc), "retry": True})
    except ReadError as exc:
        reason = str(exc)
    except MemoryError:
        reason = "ran out of memory while reading"
    except RecursionError:
        reason = "too deeply nested to read"
    except Exception as exc:  # a parser bug costs one file, never the build
        reason = f"unexpected {describe_error(exc)}"
    return encode_frame({"ok": False, "reason": reason})


def _receive(stream: BinaryIO) -> Any:
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (length,) = HEADER.unpack(header)
    data = stream.read(length)
    return decode_frame(data) if len(data) == length else None


def serve(parent: int) -> None:
    """Worker loop: a config frame, then one reply per request until end of input."""
    _die_with_parent(parent)
    out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # nothing a parser prints can reach the protocol pipe
    stdin = sys.stdin.buffer
    config = _receive(stdin)
    if not isinstance(config, dict):
        return
    try:
        count = TokenCounter.from_json(config["tokens"]).count
        count(["warm up"])
        _preload()
        _limit_memory(int(config["memory_limit"]))
    except (AskdocError, OSError, ValueError) as exc:
        out.write(encode_frame({"ready": False, "error": describe_error(exc)}))
        out.flush()
        return
    out.write(encode_frame({"ready": True}))
    out.flush()
    while (request := _receive(stdin)) is not None:
        out.write(_reply(request, config, count))
        out.flush()


if __name__ == "__main__":
    serve(int(sys.argv[1]) if len(sys.argv) > 1 else os.getppid())
