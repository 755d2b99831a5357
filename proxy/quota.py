"""Daily quotas: how many minutes each device has used of a quota rule's sites today, in memory only.

The active-minute model: a device uses a minute when it makes at least one request to the rule's sites in it
(a minute of the clock, not a minute since its first request). One page is dozens of requests in one or two
minutes, so a minute is what a student experiences as "using the site"; a tab left open that keeps polling
keeps using it, as it keeps the game or the feed on screen. A request in a minute already counted is always
let through, so the last minute of a quota is a whole minute, not one request.

Privacy: an entry is keyed by a keyed hash (BLAKE2b) of (client address, rule). The key is random, made when
the day starts and replaced at local midnight, when every entry is dropped (that is the reset); it is never
written to disk and never exported: nobody can list which devices used what, even with the machine in hand.

One table for the whole gateway: `classgate run --workers N` spreads a device's connections over N
processes, so the table lives in shared memory (a file in /dev/shm, RAM, 0600, mapped by every worker and
locked per update) when the gateway gives it a name; otherwise in the process's own memory. Either way it is
the same fixed layout: a header (format, day, key, count) and open-addressed slots.

Bounded: at most `capacity` entries (a school's devices times its quota rules), in twice as many slots so
that a lookup probes a few slots at most (and never more than `MAX_PROBES`). When the table is full, a
device not yet in it counts as used up (fail closed: a flood of addresses must not buy unlimited time), and
the gateway logs that once a day so the admin can raise the size.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import mmap
import os
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from classgate.proxy.shared_memory import SHARED_MEMORY, file_lock, map_shared, shared_path

log = logging.getLogger(__name__)

DEFAULT_CAPACITY: Final = 65536  # 3,000 devices x 20 quota rules, with room; 3.7 MB of slots
MAX_PROBES: Final = 64  # a lookup past this many slots counts as a full table (bounded work per request)

_MAGIC: Final = b"CGQUOTA1"
_HEADER = struct.Struct("<8sIIi32s")  # magic, capacity, entries, day (date ordinal), key
_SLOT = struct.Struct("<16sIiI")  # keyed hash, minutes used, last minute counted (since the epoch), refused
_EMPTY: Final = bytes(16)
_ENTRIES_AT: Final = 12  # offset of `entries` in the header


@dataclass(frozen=True, slots=True)
class QuotaUse:
    """A device's standing on one quota rule after a request (or a look)."""

    used: int  # minutes counted today, the current one included when it is counted
    limit: int
    allowed: bool  # the request may pass
    newly_used_up: bool = False  # this request is the first refused today (counted once per device and day)

    @property
    def left(self) -> int:
        return max(0, self.limit - self.used)


class QuotaBookError(Exception):
    """The shared quota table cannot be opened."""


class QuotaBook:
    """Minutes used per (device, rule) today. `local` times are in the policy's time zone.

    `shared`: the file in /dev/shm that every worker of one gateway maps; None: this process's memory."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY, *, shared: Path | None = None,
                 new_key: Callable[[], bytes] = lambda: os.urandom(32)) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._slots = 2 * capacity
        self._new_key = new_key
        self._thread_lock = threading.Lock()
        size = _HEADER.size + self._slots * _SLOT.size
        self._fd: int | None = None
        if shared is None:
            self._buf = mmap.mmap(-1, size)
        else:
            try:
                fd, self._buf = map_shared(shared, size)  # zeros when new: an empty table, initialised below
            except OSError as e:
                raise QuotaBookError(f"cannot map the quota table {shared}: {e.strerror or e}") from None
            self._fd = fd
        self._full_logged_day = 0
        with self._locked():
            magic, cap, _, _, _ = _HEADER.unpack_from(self._buf, 0)
            if magic != _MAGIC or cap != capacity:  # new, or made by another version or size: start afresh
                self._reset(0, wipe=magic != bytes(8))

    def __repr__(self) -> str:
        return f"QuotaBook(entries={len(self)}, capacity={self.capacity})"

    def __len__(self) -> int:
        return int(struct.unpack_from("<I", self._buf, _ENTRIES_AT)[0])

    def close(self) -> None:
        self._buf.close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def charge(self, client: str | None, rule: str, limit: int, local: dt.datetime) -> QuotaUse:
        """Count this request's minute against the device's quota on `rule`, and say whether it may pass."""
        minute = int(local.timestamp() // 60)
        with self._locked():
            hashed = _slot_hash(self._roll(local.date().toordinal()), client, rule)
            found = self._find(hashed)
            if found is None or (found[1] is None and len(self) >= self.capacity):
                self._log_full(local.date().toordinal())
                return QuotaUse(used=limit, limit=limit, allowed=False)
            offset, entry = found
            used, last, refused = entry if entry is not None else (0, -1, 0)
            if last == minute:
                return QuotaUse(used=used, limit=limit, allowed=True)
            if entry is None:
                struct.pack_into("<I", self._buf, _ENTRIES_AT, len(self) + 1)
            if used < limit:
                _SLOT.pack_into(self._buf, offset, hashed, used + 1, minute, refused)
                return QuotaUse(used=used + 1, limit=limit, allowed=True)
            _SLOT.pack_into(self._buf, offset, hashed, used, last, 1)
            return QuotaUse(used=used, limit=limit, allowed=False, newly_used_up=not refused)

    def peek(self, client: str | None, rule: str, limit: int, local: dt.datetime) -> QuotaUse:
        """The device's standing without counting anything (for the warn page)."""
        with self._locked():
            found = self._find(_slot_hash(self._roll(local.date().toordinal()), client, rule))
            if found is None or found[1] is None:
                full = found is None or len(self) >= self.capacity
                return QuotaUse(used=limit if full else 0, limit=limit, allowed=not full)
            used, last, _ = found[1]
            return QuotaUse(used=used, limit=limit, allowed=last == int(local.timestamp() // 60) or used < limit)

    # -- the table -------------------------------------------------------------------------------
    def _find(self, hashed: bytes) -> tuple[int, tuple[int, int, int] | None] | None:
        """The slot of `hashed` (offset, its counts) or the empty slot where it goes (offset, None); None when
        MAX_PROBES slots are taken by others (counts as full)."""
        start = int.from_bytes(hashed[:8], "little") % self._slots
        for probe in range(min(MAX_PROBES, self._slots)):
            offset = _HEADER.size + ((start + probe) % self._slots) * _SLOT.size
            slot_hash, used, last, refused = _SLOT.unpack_from(self._buf, offset)
            if slot_hash == hashed:
                return offset, (used, last, refused)
            if slot_hash == _EMPTY:
                return offset, None
        return None

    def _roll(self, day: int) -> bytes:
        """Today's key; a new local day (or a first use): a new key, and every count forgotten."""
        _, _, _, stored_day, key = _HEADER.unpack_from(self._buf, 0)
        if stored_day != day:
            key = self._reset(day, wipe=len(self) > 0)
        return bytes(key)

    def _reset(self, day: int, *, wipe: bool) -> bytes:
        """A new key for `day` and no entries. Slots are wiped only when some may be set: a new table's file
        is sparse (pages are only taken as devices are counted), and stays so on days without quotas."""
        key = self._new_key()
        if wipe:
            self._buf[_HEADER.size:] = bytes(len(self._buf) - _HEADER.size)
        _HEADER.pack_into(self._buf, 0, _MAGIC, self.capacity, 0, day, key)
        return key

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            if self._fd is None:
                yield
            else:
                with file_lock(self._fd):
                    yield

    def _log_full(self, day: int) -> None:
        if self._full_logged_day != day:
            self._full_logged_day = day
            log.warning("quota table full (%d entries): devices not yet in it count as used up until midnight",
                        self.capacity)


def _slot_hash(key: bytes, client: str | None, rule: str) -> bytes:
    text = f"{client or ''}\0{rule}".encode("utf-8", "surrogateescape")
    digest = hashlib.blake2b(text, key=key, digest_size=16).digest()
    return digest if digest != _EMPTY else b"\x01" + digest[1:]  # all zeros marks an empty slot


def shared_table_path(state_dir: Path, shm: Path = SHARED_MEMORY) -> Path | None:
    """Where the workers of the gateway with `state_dir` share their quota table; None without /dev/shm."""
    return shared_path(state_dir, "quota", shm)
