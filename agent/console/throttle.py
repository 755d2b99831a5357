"""Sign-in attempts: a rate limit and a lockout, per account and per client address, in memory, bounded.

`ACCOUNT_FAILURES` wrong sign-ins to one account within `WINDOW_SECONDS` lock that account for
`LOCK_SECONDS`, from every address (a guesser switching devices gains nothing); `ADDRESS_FAILURES` from one
address lock that address, whichever names it tries (a guesser trying many names). While locked, no password
is even checked. The lock on an account is also a way for a student to keep a teacher out for a while: the
price of stopping a guesser, and short; the teacher's sign-in from another address still meets only the
account's lock, which ends by itself.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

ACCOUNT_FAILURES: Final = 5
ADDRESS_FAILURES: Final = 20
WINDOW_SECONDS: Final = 15 * 60.0
LOCK_SECONDS: Final = 15 * 60.0
MAX_KEYS: Final = 10_000  # accounts and addresses remembered; the oldest forgotten first


@dataclass
class _Record:
    failures: list[float] = field(default_factory=list)
    locked_until: float = 0.0


class LoginThrottle:
    def __init__(self, *, account_failures: int = ACCOUNT_FAILURES, address_failures: int = ADDRESS_FAILURES,
                 window_seconds: float = WINDOW_SECONDS, lock_seconds: float = LOCK_SECONDS,
                 max_keys: int = MAX_KEYS, clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = {"account": account_failures, "address": address_failures}
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

    def succeeded(self, account: str) -> None:
        """A right sign-in forgets the account's failures (not the address's: one known password must not
        reset a guesser's count of others)."""
        with self._lock:
            record = self._records.get(("account", account))
            if record is not None and record.locked_until <= self._clock():
                del self._records[("account", account)]

    def __len__(self) -> int:
        return len(self._records)

    @staticmethod
    def _keys(account: str, address: str) -> tuple[tuple[str, str], tuple[str, str]]:
        return ("account", account.strip().lower()[:64]), ("address", address)
