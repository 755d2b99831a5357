"""Writing a file so that readers see the old content or the new, never half (temp file, fsync, rename).

The one writer of the project: the compiled index (read by every proxy worker), the sync status, the
Department's repository files. It lives here because policies/ is the package every other one may import.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace `path` with `data` atomically and durably (the data is on disk before the rename)."""
    with atomic_output(path, mode) as out:
        out.write(data)


@contextlib.contextmanager
def atomic_output(path: Path, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A file (readable too) to write `path`'s new content into, piece by piece; when the block ends it is
    fsynced and renamed over `path`, or deleted if the block raised."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w+b") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
