""""Ask your teacher": the short code on the block page, and what a teacher's console reads back from it.

A code is 8 characters of the block page's reference alphabet (32 letters and digits without 0/O and 1/I,
so 40 bits, read aloud or copied from a phone), shown as ABCD-EFGH. Eight characters cannot hold a domain, so
the code is a key: a keyed hash of (registrable domain, group, rule), and `AskCodes` keeps the last
`capacity` of them in memory, code -> `AskRequest`, for the console to pre-fill its unblock form with
`decode(code)`. The same site blocked by the same rule for the same group has the same code for every
student (and across restarts, as the key comes from the state dir): the table holds sites, never students,
and no client address goes into a code.

Nothing is sent anywhere: the student gives the code to the teacher. A code that has fallen out of the table
(evicted, or the gateway restarted and no one was blocked there since) decodes to None, and the console asks
for the address instead.

The console is another process than the proxy workers, so a gateway keeps the codes in a table the workers and
the console share in RAM (`SharedAskTable`, a file in /dev/shm: proxy/shared_memory.py): direct-mapped slots,
a new code taking the slot of an older one, so it stays a fixed size whatever is blocked.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import struct
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from classgate.metrics.topsites import IP_ADDRESS, NO_DOMAIN, registrable_domain
from classgate.proxy.blockpage import REF_ALPHABET
from classgate.proxy.shared_memory import SHARED_MEMORY, file_lock, map_shared, shared_path

log = logging.getLogger(__name__)

CODE_LENGTH: Final = 8
DEFAULT_CAPACITY: Final = 4096  # distinct blocked (site, group, rule): a school day's worth, ~1 MB at most
_SEPARATORS: Final = str.maketrans("", "", " -_.")
_SLOT_PAYLOAD: Final = 502  # JSON of (domain, group, rule): a 253-byte name and two policy names fit
_SLOT = struct.Struct(f"<{CODE_LENGTH}sH{_SLOT_PAYLOAD}s")  # code, payload length, payload: 512 bytes


@dataclass(frozen=True)
class AskRequest:
    """What a student's code stands for: the site to unblock, for which group, and which rule blocked it."""

    domain: str  # registrable domain ("example.com"), or the host itself when it has none (an IP)
    group: str
    rule: str | None  # None: the policy's default blocked it


def site_of(host: str) -> str:
    """The site a code (and a "continue") is about: the registrable domain of `host`, or the host itself when
    it has none (an address)."""
    site = registrable_domain(host)
    return host if site in (IP_ADDRESS, NO_DOMAIN) else site


def shown(code: str) -> str:
    """The code as the page shows it: ABCD-EFGH."""
    return f"{code[:4]}-{code[4:]}"


def normalise(text: str) -> str | None:
    """A code as a student or teacher types it (any case, dashes, spaces) in canonical form; None if not one."""
    code = text.translate(_SEPARATORS).upper()
    if len(code) != CODE_LENGTH or any(c not in REF_ALPHABET for c in code):
        return None
    return code


def code_of(key: bytes, request: AskRequest) -> str:
    """The code of `request` under `key` (deterministic: the same request always gives the same code)."""
    text = "\0".join((request.domain, request.group, request.rule or "")).encode("utf-8", "surrogateescape")
    value = int.from_bytes(hmac.new(key, text, hashlib.sha256).digest()[:5], "big")
    return "".join(REF_ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(CODE_LENGTH)))


class SharedAskTable:
    """Codes and what they stand for, in a file every worker and the console map (`capacity` slots of 512 bytes:
    2 MiB by default). A slot is chosen by the code; a newer code takes an older one's slot."""

    def __init__(self, path: Path, capacity: int = DEFAULT_CAPACITY, *, create: bool = True) -> None:
        """Raises OSError when the file cannot be made or mapped (or, with `create` False, does not exist)."""
        self.capacity = capacity
        self._fd, self._buf = map_shared(path, capacity * _SLOT.size, create=create)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._buf.close()
        os.close(self._fd)

    def _offset(self, code: str) -> int:
        return (int.from_bytes(hashlib.blake2b(code.encode(), digest_size=8).digest(), "big") % self.capacity) \
            * _SLOT.size

    def put(self, code: str, request: AskRequest) -> None:
        payload = json.dumps([request.domain, request.group, request.rule], ensure_ascii=False).encode()
        if len(payload) > _SLOT_PAYLOAD:
            return  # a name longer than any DNS name: no code is remembered for it
        offset = self._offset(code)
        with self._lock, file_lock(self._fd):
            stored, length, data = _SLOT.unpack_from(self._buf, offset)
            if stored == code.encode() and data[:length] == payload:
                return  # shown before: no write for every block page of the same site
            _SLOT.pack_into(self._buf, offset, code.encode(), len(payload), payload)

    def get(self, code: str) -> AskRequest | None:
        offset = self._offset(code)
        with self._lock, file_lock(self._fd):
            stored, length, data = _SLOT.unpack_from(self._buf, offset)
        if stored != code.encode() or not 0 < length <= _SLOT_PAYLOAD:
            return None
        try:
            domain, group, rule = json.loads(data[:length])
        except (ValueError, TypeError):
            return None
        if not isinstance(domain, str) or not isinstance(group, str) or not isinstance(rule, str | None):
            return None
        return AskRequest(domain, group, rule)


def shared_ask_table(state_dir: Path, *, create: bool = True, shm: Path = SHARED_MEMORY) -> SharedAskTable | None:
    """The gateway's shared table of codes, or None (no /dev/shm, or, for a reader, no gateway made one yet)."""
    path = shared_path(state_dir, "asks", shm)
    if path is None:
        return None
    try:
        return SharedAskTable(path, create=create)
    except OSError as e:
        if create:
            log.warning("cannot share ask codes in %s (%s): the console cannot read them back", path, e)
        return None


class AskCodes:
    """The codes shown lately and what each stands for; bounded (least recently shown go first), thread-safe.
    `shared`: the table the console reads them from (every code shown is also put there)."""

    def __init__(self, key: bytes, capacity: int = DEFAULT_CAPACITY, shared: SharedAskTable | None = None) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._key = key
        self.shared = shared
        self.capacity = capacity
        self._table: OrderedDict[str, AskRequest] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AskCodes(entries={len(self._table)}, capacity={self.capacity})"

    def __len__(self) -> int:
        return len(self._table)

    def encode(self, domain: str, group: str, rule: str | None) -> str:
        """The code for a block of `domain` for `group` by `rule`, remembered for `decode`."""
        request = AskRequest(domain, group, rule)
        code = code_of(self._key, request)
        with self._lock:
            self._table[code] = request  # a collision (2^-40 per pair) keeps the newest
            self._table.move_to_end(code)
            while len(self._table) > self.capacity:
                self._table.popitem(last=False)
        if self.shared is not None:
            self.shared.put(code, request)
        return code

    def decode(self, text: str) -> AskRequest | None:
        """What a code typed by a teacher stands for; None when it is no code, or no longer remembered."""
        code = normalise(text)
        if code is None:
            return None
        with self._lock:
            found = self._table.get(code)
        if found is None and self.shared is not None:
            found = self.shared.get(code)
        return found
