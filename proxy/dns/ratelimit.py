"""Queries per client, bounded: a token bucket per client address, in a table of bounded size.

Each client may ask `rate` queries a second on average and `burst` at once (a browser opening a page asks
for dozens of names at a time). Over it, queries are dropped, not answered: an answer to a flood is more
traffic, and a device that is really asking retries after its timeout. The table keeps at most `max_clients`
buckets; the one used least recently goes first (a new bucket starts full, so eviction only ever forgives).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Final

MAX_CLIENTS: Final = 32_768  # two /17s of devices; each bucket is a few dozen bytes


class RateLimiter:
    def __init__(self, rate: float, burst: float, max_clients: int = MAX_CLIENTS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("the rate must be above 0 and the burst at least 1")
        self.rate, self.burst, self.max_clients = rate, burst, max_clients
        self._clock = clock
        self._buckets: OrderedDict[Hashable, list[float]] = OrderedDict()  # client -> [tokens, last refill]

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, client: Hashable) -> bool:
        """True when `client` may ask one more query now (and counts it)."""
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= self.max_clients:
                self._buckets.popitem(last=False)
            bucket = self._buckets[client] = [self.burst, now]
        else:
            self._buckets.move_to_end(client)
            bucket[0] = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
            bucket[1] = now
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            return True
        return False
