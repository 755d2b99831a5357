"""Top sites: the most requested registrable domains per category, in bounded memory, never in Prometheus.

Admins ask "what are students using?" first. Answering with a per-domain Prometheus label would make
the number of series grow with every site visited (and ship every domain to the Department's
long-term store), so instead each category keeps a Space-Saving summary (Metwally, Agrawal, El Abbadi,
2005) of registrable domains (eTLD+1 from the Public Suffix List) with a fixed number of counters:

* memory is ``capacity`` counters per category, whatever the traffic;
* every domain seen more than ``N / capacity`` times (N = requests observed in that category) is
  guaranteed to be in the summary;
* a reported count overestimates the true count by at most that counter's ``error`` (which itself is
  at most ``N / capacity``), so ``count - error`` is a guaranteed lower bound.

Privacy: only the registrable domain is kept (no path, no subdomain, no client address). A domain is
shown only once at least ``min_clients`` distinct clients requested it, so a site one student opened
is not shown. Clients are counted with a keyed 32-bit hash whose key is random per process and never
leaves memory; at most ``min_clients`` hashes are kept per tracked domain and dropped with it. A caller
that cannot say who the client is passes ``client=None``: all such requests count as one client, so
nothing is shown on their strength alone (the safe side).
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import ipaddress
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

IP_ADDRESS = "(ip address)"
NO_DOMAIN = "(no registrable domain)"


@functools.cache
def _psl():  # type: ignore[no-untyped-def]
    # Loaded on first use: parsing the bundled list takes ~50 ms, and only the proxy needs it.
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


@functools.lru_cache(maxsize=8192)
def registrable_domain(host: str) -> str:
    """eTLD+1 of `host` ("www.bbc.co.uk" -> "bbc.co.uk"); IP literals and bare suffixes fold to a bucket."""
    host = host.strip().rstrip(".").lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        # A destination address is not a site name, and an address on the school LAN could be a
        # student's device: one bucket for all of them.
        return IP_ADDRESS
    return _psl().privatesuffix(host) or NO_DOMAIN


@dataclass(slots=True)
class _Counter:
    count: int
    error: int
    clients: set[int] = field(default_factory=set)


class SpaceSaving:
    """Space-Saving heavy hitters over one stream; not thread-safe (TopSites locks around it)."""

    def __init__(self, capacity: int, min_clients: int):
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.min_clients = min_clients
        self.total = 0
        self._counters: dict[str, _Counter] = {}
        # Min-heap of (count, key), one entry per counter, updated lazily: counts only grow, so an
        # entry's count is a lower bound of its counter's. Increments touch no heap; an eviction
        # re-files stale entries until the smallest is current. Amortised O(log capacity).
        self._heap: list[tuple[int, str]] = []

    def add(self, key: str, client: Callable[[], int]) -> None:
        """Count `key`; `client()` (the device's hash) is only computed while the threshold is unmet."""
        self.total += 1
        counter = self._counters.get(key)
        if counter is None:
            if len(self._counters) < self.capacity:
                counter = self._counters[key] = _Counter(0, 0)
            else:
                # Replace the smallest counter: the newcomer inherits its count as its error bound.
                old = self._counters.pop(self._pop_min())
                counter = self._counters[key] = _Counter(old.count, old.count)
            counter.count += 1
            heapq.heappush(self._heap, (counter.count, key))
        else:
            counter.count += 1
        if len(counter.clients) < self.min_clients:
            counter.clients.add(client())

    def _pop_min(self) -> str:
        while True:
            count, key = self._heap[0]
            current = self._counters[key].count
            if current == count:
                heapq.heappop(self._heap)
                return key
            heapq.heapreplace(self._heap, (current, key))

    def top(self, n: int) -> tuple[list[dict[str, object]], int]:
        """The `n` largest counters that `min_clients` distinct clients reached, and how many were hidden."""
        ranked = sorted(self._counters.items(), key=lambda kv: (-kv[1].count, kv[0]))
        shown: list[dict[str, object]] = []
        hidden = 0
        for key, c in ranked:
            if len(c.clients) < self.min_clients:
                hidden += 1
            elif len(shown) < n:
                shown.append({"domain": key, "requests": c.count, "requests_at_least": c.count - c.error})
        return shown, hidden

    def __len__(self) -> int:
        return len(self._counters)


class TopSites:
    """Per-category Space-Saving summaries of registrable domains (`metrics.Metrics.topsites`)."""

    def __init__(
        self,
        fold_category: Callable[[object], str],
        capacity: int = 128,
        min_clients: int = 3,
        clock: Callable[[], float] = time.time,
    ):
        self.capacity = capacity
        self.min_clients = min_clients
        self._fold = fold_category
        self._clock = clock
        self._key = os.urandom(16)
        self._lock = threading.Lock()
        self._by_category: dict[str, SpaceSaving] = {}
        self.since = clock()
        self.shared = False  # True once a supervisor gave the key its workers share (share_key)

    def observe(self, category: str, host: str, client: str | None = None) -> None:
        """Count one request to `host` in `category`; never raises (a bad host is simply not counted)."""
        if not isinstance(host, str) or not host:
            return
        category = self._fold(category)
        domain = registrable_domain(host)
        with self._lock:
            sketch = self._by_category.get(category)
            if sketch is None:
                sketch = self._by_category[category] = SpaceSaving(self.capacity, self.min_clients)
            sketch.add(domain, lambda: self._client_hash(client))

    def _client_hash(self, client: str | None) -> int:
        # Hashed on every call, never cached: a cache would be a table of client addresses.
        if client is None:
            return 0  # "unknown client"
        digest = hashlib.blake2b(client.encode(), key=self._key, digest_size=4).digest()
        return int.from_bytes(digest, "big") | 1  # never 0

    def keep_categories(self, allowed: frozenset[str]) -> None:
        """Drop the summaries of categories the new policy no longer has (their label is folded now)."""
        with self._lock:
            for name in [c for c in self._by_category if c not in allowed and c != "other"]:
                del self._by_category[name]

    def reset(self) -> None:
        with self._lock:
            self._by_category.clear()
            self.since = self._clock()

    def tracked(self) -> int:
        """How many domain counters are in use across all categories (for the scrape-time gauge)."""
        with self._lock:
            return sum(len(s) for s in self._by_category.values())

    def share_key(self, key: bytes) -> None:
        """Hash clients with `key`, the one every worker of a gateway shares (agent/workers.py), so that a
        device whose connections the kernel spread over several workers still counts once when they merge."""
        with self._lock:
            self._key = key
            self.shared = True

    def snapshot(self, n: int = 20) -> dict[str, object]:
        """The JSON document served at /stats.json."""
        with self._lock:
            return _document(self._by_category, n, self.since, self.capacity, self.min_clients)

    def export(self) -> dict[str, object]:
        """Every counter with its client hashes, for the supervisor to merge (`merge_exports`); served only
        by a worker on its loopback endpoint, never the gateway's. The hashes are keyed: not addresses."""
        with self._lock:
            categories = {
                name: {"total": s.total, "counters": [[k, c.count, c.error, sorted(c.clients)]
                                                     for k, c in s._counters.items()]}
                for name, s in self._by_category.items()
            }
        return {"since": self.since, "capacity": self.capacity, "min_clients": self.min_clients,
                "categories": categories}


def merge_exports(exports: list[dict], n: int) -> dict[str, object]:
    """The /stats.json document of a gateway whose workers exported these summaries.

    Space-Saving summaries merge by adding counts (Agarwal et al., "Mergeable summaries", 2012): a domain
    missing from a full summary may still have had up to that summary's smallest count there, which is
    added to its error bound. Client hashes are united, so `min_clients` counts distinct devices overall.
    """
    if not exports:
        return _document({}, n, time.time(), 0, 0)
    capacity, min_clients = int(exports[0]["capacity"]), int(exports[0]["min_clients"])
    merged: dict[str, SpaceSaving] = {}
    for name in {name for doc in exports for name in doc["categories"]}:
        sketch = merged[name] = SpaceSaving(capacity, min_clients)
        parts = [doc["categories"].get(name, {"total": 0, "counters": []}) for doc in exports]
        # A domain a full summary lacks may still have had up to its smallest count there: that is added
        # to its count and its error, whichever order the workers are merged in.
        unseen_bounds = [
            min((int(r[1]) for r in p["counters"]), default=0) if len(p["counters"]) >= capacity else 0
            for p in parts
        ]
        rows = [{str(r[0]): r for r in p["counters"]} for p in parts]
        sketch.total = sum(int(p["total"]) for p in parts)
        for key in {key for part_rows in rows for key in part_rows}:
            counter = sketch._counters[key] = _Counter(0, 0)
            for part_rows, unseen_bound in zip(rows, unseen_bounds):
                row = part_rows.get(key)
                if row is None:
                    counter.count += unseen_bound
                    counter.error += unseen_bound
                else:
                    counter.count += int(row[1])
                    counter.error += int(row[2])
                    counter.clients.update(int(c) for c in row[3])
    for sketch in merged.values():  # one summary's size again: the `capacity` largest counters
        if len(sketch._counters) > capacity:
            kept = sorted(sketch._counters.items(), key=lambda kv: (-kv[1].count, kv[0]))[:capacity]
            sketch._counters = dict(kept)
    # Each error is at most its worker's N_i / capacity; their sum is at most N / capacity, the bound shown.
    return _document(merged, n, min(float(d["since"]) for d in exports), capacity, min_clients)


def _document(sketches: dict[str, SpaceSaving], n: int, since: float, capacity: int,
              min_clients: int) -> dict[str, object]:
    categories = {}
    for name in sorted(sketches):
        sketch = sketches[name]
        top, hidden = sketch.top(n)
        categories[name] = {
            "requests": sketch.total,
            # Every count below may be over by at most this much (Space-Saving bound N/capacity).
            "max_error": sketch.total // sketch.capacity,
            "top": top,
            "hidden_domains": hidden,
        }
    return {
        "since": since,
        "capacity_per_category": capacity,
        "min_clients": min_clients,
        "categories": categories,
    }
