"""The one-writer lock of an index: an exclusive ``flock`` on ``index/.lock``.

The kernel drops the lock when its holder dies, so a killed build never leaves the index locked.
The file holds no data; a folder, link or special file in its place is refused with one line
(remove it: askdoc makes the file again).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from pathlib import Path

from askdoc.errors import IndexBusyError, IndexWriteError

LOCK_NAME = ".lock"


class IndexLock:
    """An exclusive flock on ``index/.lock``, taken when it is made: one writer at a time.
    ``wait``: block until it is free; ``timeout``: wait at most that many seconds (then
    IndexBusyError). A context manager: ``with IndexLock(index): ...`` releases it on exit."""

    def __init__(self, index_dir: Path, wait: bool = False, timeout: float | None = None) -> None:
        self._fd = _open_lock_file(index_dir)
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
            except OSError as exc:  # e.g. a file system without locks
                os.close(self._fd)
                raise IndexWriteError(
                    f"{index_dir / LOCK_NAME}: cannot lock it ({exc.strerror})"
                ) from None

    def __enter__(self) -> IndexLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        """Let the next writer in (the lock is released at most once)."""
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1


def _open_lock_file(index_dir: Path) -> int:
    """Open (create) ``index/.lock``: a regular file, never followed if it is a link. Anything
    else in its place is one line saying so (the file holds no data: removing it is safe)."""
    path = index_dir / LOCK_NAME
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise IndexWriteError(f"{index_dir} is not a folder: the index needs a folder") from None
    except OSError as exc:
        raise IndexWriteError(
            f"{index_dir}: cannot create the index folder ({exc.strerror})"
        ) from None
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
    fix = "not askdoc's lock file: remove it (askdoc makes it again; it holds no data)"
    try:
        fd = os.open(path, flags, 0o644)
    except IsADirectoryError:
        raise IndexWriteError(f"{path} is a folder, {fix}") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise IndexWriteError(f"{path} is a symbolic link, {fix}") from None
        raise IndexWriteError(f"{path}: cannot open the lock file ({exc.strerror})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise IndexWriteError(f"{path} is not a regular file, {fix}")
    return fd
