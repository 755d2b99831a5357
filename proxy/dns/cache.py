"""Upstream answers kept for their TTL, bounded: the resolver asks the upstream once per name and type.

What is cached is the upstream's answer after `ech` was stripped, keyed by the question and the DNSSEC bits
that change it (DO, CD); never a decision, which depends on the client and the time and is taken per query.
- TTL: the smallest TTL of the answer and authority records, at most `max_ttl`. A negative answer (NXDOMAIN,
  or no data) lives for its SOA's negative TTL (RFC 2308), at most `max_negative_ttl`, and is not cached
  without an SOA. SERVFAIL, REFUSED and friends are never cached: the next query tries again.
- Served answers carry the TTLs that remain (the records age with the cache).
- At most `max_entries` answers; the least recently used one goes first (an OrderedDict, O(1) each way).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from mitmproxy.dns import ResourceRecord
from mitmproxy.net.dns import response_codes, types

from classgate.proxy.dns.wire import Answer

MAX_TTL: Final = 86_400
MAX_NEGATIVE_TTL: Final = 300
CacheKey = tuple[bytes, bool, bool]  # the question (lower case), DO, CD


def cache_key(question: bytes, *, do: bool, cd: bool) -> CacheKey:
    return (question.lower(), do, cd)


def answer_ttl(answer: Answer, max_ttl: int = MAX_TTL, max_negative_ttl: int = MAX_NEGATIVE_TTL) -> int:
    """How long `answer` may be kept (0: not at all)."""
    if answer.rcode == response_codes.NOERROR and answer.answers:
        return max(0, min(max_ttl, *(rr.ttl for rr in answer.answers), *(rr.ttl for rr in answer.authorities)))
    if answer.rcode in (response_codes.NOERROR, response_codes.NXDOMAIN):
        for rr in answer.authorities:
            if rr.type == types.SOA and len(rr.data) >= 4:
                minimum = int.from_bytes(rr.data[-4:], "big")
                return max(0, min(rr.ttl, minimum, max_negative_ttl))
    return 0


def _aged(records: list[ResourceRecord], age: int) -> list[ResourceRecord]:
    return [ResourceRecord(rr.name, rr.type, rr.class_, max(0, rr.ttl - age), rr.data) for rr in records]


class AnswerCache:
    def __init__(self, max_entries: int, clock: Callable[[], float] = time.monotonic, *, max_ttl: int = MAX_TTL,
                 max_negative_ttl: int = MAX_NEGATIVE_TTL) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._max_ttl, self._max_negative_ttl = max_ttl, max_negative_ttl
        # key -> [expires, stored, answer, age of the last copy served, that copy]
        self._entries: OrderedDict[CacheKey, list] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey) -> Answer | None:
        """A copy of the cached answer with its TTLs aged, or None (absent or expired)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        now = self._clock()
        expires, stored, answer, served_age, served = entry
        if now >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        age = int(now - stored)
        if age != served_age:  # one aged copy per second per answer, shared by the queries of that second
            served = Answer(answer.rcode, _aged(answer.answers, age), _aged(answer.authorities, age),
                            _aged(answer.additionals, age), answer.authenticated)
            entry[3], entry[4] = age, served
        return Answer(served.rcode, list(served.answers), list(served.authorities), list(served.additionals),
                      served.authenticated)

    def put(self, key: CacheKey, answer: Answer) -> None:
        ttl = answer_ttl(answer, self._max_ttl, self._max_negative_ttl)
        if ttl <= 0 or self.max_entries <= 0:
            return
        if key not in self._entries and len(self._entries) >= self.max_entries:
            self._entries.popitem(last=False)
        now = self._clock()
        self._entries[key] = [now + ttl, now, answer, -1, answer]
        self._entries.move_to_end(key)

    def clear(self) -> None:
        self._entries.clear()
