"""An exclusive lock for a read-change-write of a file shared by several processes (fcntl.flock).

Writers that change one file from several processes (the CLI, the web console) hold it around reading the
file and writing it back with atomic_write; readers need no lock, since atomic_write gives them the old file
or the new one. Here, beside atomicfile.py, because policies/ is the package every other one may import.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def exclusive_lock(lock_path: Path, mode: int = 0o600, *,
                   error: Callable[[str], Exception] | None = None) -> Iterator[None]:
    """Hold an exclusive flock on `lock_path` (created if missing). When it cannot be opened: OSError, or
    `error("<path>: cannot open: <reason>")` (the caller's own exception) when given."""
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, mode)
    except OSError as exc:
        if error is None:
            raise
        raise error(f"{lock_path}: cannot open: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # writers are short (read, change, rename): the wait is brief
        yield
    finally:
        os.close(fd)  # closing releases the lock
