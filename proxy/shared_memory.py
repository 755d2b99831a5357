"""Tables the workers of one gateway (and its console) share in RAM: files in /dev/shm, mapped by each.

/dev/shm is tmpfs: what is kept there is never written to a disk and is gone at a reboot, which is what the
student side wants (quota counts, "ask your teacher" codes). One file per gateway and kind, named by a digest
of the state dir, mode 0600 (the gateway's user only). Writers and readers take the file's lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Final

SHARED_MEMORY: Final = Path("/dev/shm")  # tmpfs: RAM, never a disk


def shared_path(state_dir: Path, kind: str, shm: Path = SHARED_MEMORY) -> Path | None:
    """The file of table `kind` for the gateway with `state_dir`; None without a writable /dev/shm."""
    if not shm.is_dir() or not os.access(shm, os.W_OK):
        return None
    name = hashlib.sha256(str(Path(state_dir).resolve()).encode()).hexdigest()[:16]
    return shm / f"classgate-{kind}-{name}"


def map_shared(path: Path, size: int, *, create: bool = True) -> tuple[int, mmap.mmap]:
    """(fd, mapping) of `path`, made (zeros) or grown to `size` bytes if `create`; raises OSError."""
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    fd = os.open(path, flags, 0o600)
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or st.st_mode & 0o077:
            # /dev/shm is writable by every local user: a table someone else made (or opened up) could be read or
            # filled by them. Refused; the caller then keeps its table in its own memory.
            raise OSError(f"{path} belongs to another user or is open to others")
        with file_lock(fd):
            if os.fstat(fd).st_size < size:
                if not create:
                    raise OSError(f"{path} is smaller than a table of this version")
                os.ftruncate(fd, size)
        return fd, mmap.mmap(fd, size)
    except BaseException:
        os.close(fd)
        raise


@contextlib.contextmanager
def file_lock(fd: int) -> Iterator[None]:
    """The table's lock, between processes (a thread lock is the caller's)."""
    fcntl.lockf(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.lockf(fd, fcntl.LOCK_UN)
