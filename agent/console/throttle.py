"""Sign-in attempts: a rate limit and a lockout, in memory, bounded.

Three counts within `WINDOW_SECONDS`, each locking for `LOCK_SECONDS` when it reaches its limit:
- `ACCOUNT_FAILURES` wrong sign-ins to one account from one address lock that account *on that address*:
  a student guessing a teacher's password from a phone is stopped, and the teacher, on their own device,
  is not locked out by it (a student in the room must not be able to keep the teacher out of the console
  with five wrong passwords);
- `ADDRESS_FAILURES` from one address lock that address, whichever names it tries (a guesser of many names);
- `SPREAD_FAILURES` to one account from any addresses lock the account everywhere: a guess spread over many
  devices. It takes several devices' worth of failures (`ADDRESS_FAILURES` each at most), and scrypt keeps
  every guess slow, so a teacher is locked out only by a deliberate attack from many devices, and not for
  long.
While locked, no password is even checked.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

ACCOUNT_FAILURES: Final = 5  # one account from one address
ADDRESS_FAILURES: Final = 20  # any accounts from one address
SPREAD_FAILURES: Final = 50  # one account from any addresses
WINDOW_SECONDS: Final = 15 * 60.0
LOCK_SECONDS: Final = 15 * 60.0
MAX_KEYS: Final = 10_000  # accounts and addresses remembered; the oldest forgotten first


@dataclass
class _Record:
    failures: list[float] = field(default_factory=list)
    locked_until: float = 0.0


class LoginThrottle:
    def __init__(self, *, account_failures: int = ACCOUNT_FAILURES, address_failures: int = ADDRESS_FAILURES,
                 spread_failures: int = SPREAD_FAILURES, window_seconds: float = WINDOW_SECONDS,
                 lock_seconds: float = LOCK_SECONDS, max_keys: int = MAX_KEYS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = {"pair": account_failures, "address": address_failures, "account": spread_failures}
        self._window = window_seconds
        self._lock_seconds = lock_seconds
        self._max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        self._records: OrderedDict[tuple[str, str], _Record] = OrderedDict()

    def locked_minutes(self, account: str, address: str) -> int:
        """Whole minutes (rounded up) until a sign-in of `account` from `address` may be tried; 0: now."""
        now = self._clock()
        with self._lock:
            left = max((r.locked_until - now for key in self._keys(account, address)
                        if (r := self._records.get(key)) is not None), default=0.0)
        return math.ceil(left / 60) if left > 0 else 0

    def failed(self, account: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            for key in self._keys(account, address):
                record = self._records.pop(key, None) or _Record()
                record.failures = [t for t in record.failures if now - t < self._window][-self._limits[key[0]]:]
                record.failures.append(now)
                if len(record.failures) >= self._limits[key[0]]:
                    record.locked_until = now + self._lock_seconds
                    record.failures = []
                self._records[key] = record
            while len(self._records) > self._max_keys:
                self._records.popitem(last=False)

    def succeeded(self, account: str, address: str) -> None:
        """A right sign-in forgets the account's failures on that address (not the address's own count: one
        known password must not reset a guesser's count of others; nor the account's spread count, which
        another device's guesser builds)."""
        key = self._keys(account, address)[0]
        with self._lock:
            record = self._records.get(key)
            if record is not None and record.locked_until <= self._clock():
                del self._records[key]

    def __len__(self) -> int:
        return len(self._records)

    @staticmethod
    def _keys(account: str, address: str) -> tuple[tuple[str, str], ...]:
        name = account.strip().lower()[:64]
        return ("pair", f"{name}\0{address}"), ("address", address), ("account", name)
