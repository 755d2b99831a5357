"""Pieces of the engine's per-authority fast path: a bounded cache (keyed there by the raw authority of a
URL) and the test that a URL's rest (path and query) is already canonical.

Why: in proxy traffic most requests go to a host seen a moment ago, so the costly parts of a decision (WHATWG
host parsing, suffix walk, rules) repeat. The engine looks the raw authority up as it comes and, when the rest
needs no normalising, builds the canonical URL by concatenation (policies.engine.Policy.decide).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

# The characters the full parser (policies.canonical) keeps as they are in a path and a query; with nothing
# else, no dot segment ("/." covers "/./", "/../" and a final "/." or "/..") and no empty query ("/a?"
# drops its "?"), the canonical rest is the raw rest.
_REST_NEEDS_WORK = re.compile(r"[^A-Za-z0-9\-._~!$&()*+,;=:@/?\[\]^|]|/\.|\?$").search


def tail_is_canonical(tail: str) -> bool:
    """True when `tail` (starting with "/") is what the full parser would make of it."""
    return _REST_NEEDS_WORK(tail) is None


class GenerationalCache:
    """key -> value in two generations: readers look in `young` first (a plain dict, read inline by the
    engine), then `lookup` tries `old` (and promotes) or computes; when `young` is full it becomes `old`.
    An approximate LRU at the cost of one dict lookup per hit, with no per-hit bookkeeping; it holds between
    `size` and 2 x `size` entries. Values should be tuples of strings and numbers: the cyclic GC then
    untracks them, where lru_cache links or nested dicts would be re-walked by every full collection.
    Thread-safe enough for the engine: a race can only lose an entry, which is then recomputed."""

    def __init__(self, size: int, compute: Callable[[Any], Any]):
        self._size = size
        self._compute = compute
        self.young: dict[Any, Any] = {}
        self._old: dict[Any, Any] = {}
        self.computed = 0  # values computed (misses in both generations), for the benchmark's hit rates

    def lookup(self, key: Any) -> Any:
        """The value for `key` (a miss in `young`): from `old`, or computed."""
        value = self._old.get(key, _MISSING)
        if value is _MISSING:
            value = self._compute(key)
            self.computed += 1
        self.put(key, value)
        return value

    def find(self, key: Any) -> Any:
        """The value for `key` (a miss in `young`) from `old` (promoted), or None; computes nothing."""
        value = self._old.get(key)
        if value is not None:
            self.put(key, value)
        return value

    def put(self, key: Any, value: Any) -> None:
        young = self.young
        if len(young) >= self._size:
            self._old, self.young = young, {}
            young = self.young
        young[key] = value

    def __len__(self) -> int:
        return len(self.young) + len(self._old)

    def clear(self) -> None:
        self.young, self._old = {}, {}


_MISSING = object()
