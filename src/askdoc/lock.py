"""The one-writer lock of an index: an exclusive ``flock`` on ``index/.lock``.

The kernel drops the lock when its holder dies, so a killed build never leaves the index locked.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from askdoc.errors import IndexBusyError

LOCK_NAME = ".lock"


class IndexLock:
    """An exclusive flock on ``index/.lock``: one writer at a time. ``wait``: block until it is
    free; ``timeout``: wait at most that many seconds (then IndexBusyError)."""

    def __init__(self, index_dir: Path, wait: bool = False, timeout: float | None = None) -> None:
        index_dir.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(index_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + (timeout or 0.0)
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
                return
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                os.close(self._fd)
                raise IndexBusyError(
                    f"another `askdoc index` is already building {index_dir}; "
                    "wait for it to finish (or use --wait)"
                ) from None

    def release(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1
