"""The engine's caches, in one object (`EngineCaches`), and the pieces of its per-authority fast path: a
bounded cache keyed by the raw authority of a URL, and the test that a URL's rest (path and query) is already
canonical.

Why: in proxy traffic most requests go to a host seen a moment ago, so the costly parts of a decision (WHATWG
host parsing, suffix walk, rules) repeat. The engine looks the raw authority up as it comes and, when the rest
needs no normalising, builds the canonical URL by concatenation (policies.engine.Policy.decide).

What the caches hold are tuples of strings and numbers, never sets, lists or tuple subclasses: the cyclic GC
untracks such tuples, so millions of cached entries cost its collections nothing.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Hashable
from typing import Generic, Literal, ParamSpec, TypeVar, cast

from classgate.policies.canonical import CanonicalUrl
from classgate.policies.vocabulary import Action, Tier

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
P = ParamSpec("P")
R = TypeVar("R")

RawMatch = tuple[str, str, str]  # a Match's fields as a plain tuple: (category, source, entry)
# A destination's facts: (categories sorted, the same again (probed by rules' category sets), rule positions
# whose own domains/urls hit, category matches).
Dest = tuple[tuple[str, ...], tuple[str, ...], tuple[int, ...], tuple[RawMatch, ...]]
# What one list-set means: (categories sorted, the same again, rule positions, (category, source) pairs).
SetFacts = tuple[tuple[str, ...], tuple[str, ...], tuple[int, ...], tuple[tuple[str, str], ...]]
HostFacts = tuple[Dest, tuple[str, ...]]  # a host's facts, and its suffixes that have `urls` entries
Verdict = tuple[Action, str | None, Tier]  # (action, rule name or None for the default, tier)
# What a verdict depends on, for a destination whose path cannot matter: (categories, rule hits, group, schedules).
VerdictKey = tuple[tuple[str, ...], tuple[int, ...], str, tuple[str, ...]]
Outcome = tuple[Action, str | None, Tier, tuple[str, ...], tuple[RawMatch, ...]]  # + categories, matches
# The fast path's facts about a raw authority: (canonical host, whether the path can change the outcome,
# categories, rule hits, matches); False: URLs with this authority go to the full parser.
AuthorityEntry = tuple[str, bool, tuple[str, ...], tuple[int, ...], tuple[RawMatch, ...]] | Literal[False]
OutcomeFn = Callable[[str, str | None, str | None, str | None, str, tuple[str, ...]], Outcome]

# Memos whose keys are few in normal use; the limit only bounds a flood.
GROUP_MEMO_LIMIT = 65536  # client address -> group: a school has a few thousand devices
VERDICT_LIMIT = 4096  # (categories, rule hits, group, schedules) combinations: a few hundred in practice
NO_SECOND: tuple[int | None, tuple[str, ...]] = (None, ())  # the schedule memo before its first second

# The characters the full parser (policies.canonical) keeps as they are in a path and a query; with nothing
# else, no dot segment ("/." covers "/./", "/../" and a final "/." or "/.."), no empty segment in the path
# ("//" before any "?": servers merge slashes, so the parser does), and no empty query ("/a?" drops its
# "?"), the canonical rest is the raw rest.
# (The engine calls `rest_needs_work` inline: a Python call costs ~2% of a fast-path decision.)
rest_needs_work = re.compile(r"[^A-Za-z0-9\-._~!$&()*+,;=:@/?\[\]^|]|/\.|\?$|^[^?]*//").search


def tail_is_canonical(tail: str) -> bool:
    """True when `tail` (starting with "/") is what the full parser would make of it."""
    return rest_needs_work(tail) is None


class EngineCaches:
    """Every cache and memo of one compiled policy, built in one place and emptied by one `clear()`.

    The engine reads the attributes directly (one request is a handful of dict lookups; a method call per
    lookup would cost more than the lookup). `size` bounds the request caches (parsed URLs by raw text,
    canonical hosts by raw host, host facts by canonical host, outcomes by (host, path if it matters, group,
    schedules), the fast path's authorities and verdicts); `size` 0 turns those off, for measuring and as
    the reference the fast path is tested against. The memos that make even the uncached path what it is
    stay on: client -> group, the schedules active in the current second, and each list-set's meaning (one
    per list-set of the compiled index, a lazily compiled table rather than a cache of requests)."""

    __slots__ = (
        "_lru",
        "authorities",
        "groups",
        "host",
        "host_facts",
        "outcome",
        "parse",
        "schedule_memo",
        "set_facts",
        "size",
        "verdicts",
    )

    def __init__(self, size: int, *, parse: Callable[[str], CanonicalUrl], host: Callable[[str], str],
                 host_facts: Callable[[str], HostFacts], outcome: OutcomeFn,
                 authority: Callable[[str], AuthorityEntry]):
        """The caches in front of the engine's uncached functions (each given by keyword)."""
        self.size = size
        self._lru: list[Callable[[], None]] = []  # cache_clear of each lru_cache
        self.parse = self._bounded(parse)
        self.host = self._bounded(host)
        self.host_facts = self._bounded(host_facts)
        self.outcome = self._bounded(outcome)
        self.authorities: GenerationalCache[str, AuthorityEntry] | None = (
            GenerationalCache(size, authority) if size > 0 else None)
        # Plain dicts, read with .get by the engine (on a dict subclass .get costs more: CPython specialises the
        # call for the exact type); written through remember_*(), which bound them.
        self.verdicts: dict[VerdictKey, Verdict] = {}  # filled by the fast path only
        self.groups: dict[str | None, str] = {}  # client address -> group
        self.schedule_memo = NO_SECOND  # (second, schedules active in it)
        self.set_facts: dict[int, SetFacts] = {}  # list-set id -> what it means in this policy

    def remember_group(self, client: str | None, group: str) -> str:
        return _remember(self.groups, GROUP_MEMO_LIMIT, client, group)

    def remember_verdict(self, key: VerdictKey, verdict: Verdict) -> Verdict:
        return _remember(self.verdicts, VERDICT_LIMIT, key, verdict)

    def _bounded(self, fn: Callable[P, R]) -> Callable[P, R]:
        if self.size <= 0:
            return fn
        cached = functools.lru_cache(self.size)(fn)
        self._lru.append(cached.cache_clear)
        return cast("Callable[P, R]", cached)  # typeshed types the wrapper's call as (*Hashable) -> R

    def clear(self) -> None:
        """Forget everything (the next requests recompute it)."""
        for cache_clear in self._lru:
            cache_clear()
        if self.authorities is not None:
            self.authorities.clear()
        self.verdicts.clear()
        self.groups.clear()
        self.schedule_memo = NO_SECOND
        self.set_facts.clear()


def _remember(memo: dict[K, V], limit: int, key: K, value: V) -> V:
    """Store and return `value`; a memo found full forgets everything first."""
    if len(memo) >= limit:
        memo.clear()
    memo[key] = value
    return value


class GenerationalCache(Generic[K, V]):
    """key -> value in two generations: readers look in `young` first (a plain dict, read inline by the
    engine), then `lookup` tries `old` (and promotes) or computes; when `young` is full it becomes `old`.
    An approximate LRU at the cost of one dict lookup per hit, with no per-hit bookkeeping; it holds between
    `size` and 2 x `size` entries. Values should be tuples of strings and numbers: the cyclic GC then
    untracks them, where lru_cache links or nested dicts would be re-walked by every full collection.
    Thread-safe enough for the engine: a race can only lose an entry, which is then recomputed."""

    def __init__(self, size: int, compute: Callable[[K], V]):
        self._size = size
        self._compute = compute
        self.young: dict[K, V] = {}
        self._old: dict[K, V] = {}
        self.computed = 0  # values computed (misses in both generations), for the benchmark's hit rates

    def lookup(self, key: K) -> V:
        """The value for `key` (a miss in `young`): from `old`, or computed."""
        old = self._old  # never changed in place (put replaces it), so the two reads agree
        if key in old:
            value = old[key]
        else:
            value = self._compute(key)
            self.computed += 1
        self.put(key, value)
        return value

    def find(self, key: K) -> V | None:
        """The value for `key` (a miss in `young`) from `old` (promoted), or None; computes nothing."""
        value = self._old.get(key)
        if value is not None:
            self.put(key, value)
        return value

    def put(self, key: K, value: V) -> None:
        young = self.young
        if len(young) >= self._size:
            self._old, self.young = young, {}
            young = self.young
        young[key] = value

    def __len__(self) -> int:
        return len(self.young) + len(self._old)

    def clear(self) -> None:
        self.young, self._old = {}, {}
