"""`Metrics`: the one registry of a classgate process and the methods the proxy calls per event.

Events (requests, TLS handshakes, rewrites, errors, reloads) are counted directly on prometheus_client
counters. State that exists at scrape time (which policy is active, build info, top-sites size) comes
from `metrics.state.StateCollector`, and the sync state from `metrics.sync.SyncMetrics`.

Every method takes plain strings and never raises: a metrics problem must not turn into a request
the filter failed to decide. Values outside the bounded sets are folded into "other".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, disable_created_metrics

from metrics import labels as L
from metrics.state import PolicyState, StateCollector
from metrics.sync import SyncMetrics
from metrics.topsites import TopSites

# Deciding is an index lookup plus a few rules: tens of microseconds normally, milliseconds when
# something is wrong (a huge regex, a cold page cache). Buckets span 10 us .. 0.25 s.
DECISION_BUCKETS = (
    1e-05,
    2.5e-05,
    5e-05,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.1,
    0.25,
)

# `_created` series double the count of every counter and nothing of ours reads them.
disable_created_metrics()


class Metrics:
    """Everything classgate exports, in its own `CollectorRegistry` (one instance per process)."""

    def __init__(
        self,
        *,
        process_metrics: bool = True,
        clock: Callable[[], float] = time.time,
        topsites_capacity: int = 128,
        topsites_min_clients: int = 3,
    ):
        self.registry = CollectorRegistry(auto_describe=True)
        self._labels = L.PolicyLabels()
        r = self.registry
        by_request = ["category", "group", "action"]
        self.requests = Counter(
            "classgate_requests",
            "HTTP requests decided, by destination category, client group and action.",
            by_request,
            registry=r,
        )
        self.request_bytes = Counter(
            "classgate_request_bytes", "Bytes of request bodies sent by clients.", by_request, registry=r
        )
        self.response_bytes = Counter(
            "classgate_response_bytes",
            "Bytes of response bodies received by clients.",
            by_request,
            registry=r,
        )
        self.blocked = Counter(
            "classgate_blocked_requests",
            "Requests blocked, by category and by the tier of the rule that blocked.",
            ["category", "tier"],
            registry=r,
        )
        self.tls = Counter(
            "classgate_tls_connections",
            "HTTPS connections by handling: intercepted, passed through untouched, refused by SNI.",
            ["mode"],
            registry=r,
        )
        self.safesearch = Counter(
            "classgate_safesearch_rewrites",
            "Requests rewritten to enforce SafeSearch, by engine.",
            ["engine"],
            registry=r,
        )
        self.filter_errors = Counter(
            "classgate_filter_errors",
            "Internal errors inside the filter; each one was answered with a block (fail closed).",
            ["stage"],
            registry=r,
        )
        self.decision_seconds = Histogram(
            "classgate_decision_duration_seconds",
            "Time to decide one request.",
            buckets=DECISION_BUCKETS,
            registry=r,
        )
        self.reloads = Counter(
            "classgate_policy_reloads",
            "Policy loads: succeeded, or rejected (the previous policy stayed).",
            ["result"],
            registry=r,
        )
        # Series for the fixed enums exist from the start at 0, so `rate()` and alerts see the first
        # event instead of a series appearing out of nowhere.
        for mode in L.TLS_MODES:
            self.tls.labels(mode)
        for engine in L.SAFESEARCH_ENGINES:
            self.safesearch.labels(engine)
        for stage in (*L.FILTER_STAGES, L.OTHER):
            self.filter_errors.labels(stage)
        for result in L.RELOAD_RESULTS:
            self.reloads.labels(result)

        self.topsites = TopSites(
            lambda c: self._labels.category(c),  # reads the current labels, swapped by set_policy
            capacity=topsites_capacity,
            min_clients=topsites_min_clients,
            clock=clock,
        )
        self._policy: PolicyState | None = None
        self.sync = SyncMetrics(clock=clock)
        r.register(self.sync)
        r.register(StateCollector(lambda: self._policy, self.topsites))
        if process_metrics:
            ProcessCollector(registry=r)
        # labels() costs a dict lookup plus a lock; caching the children per label tuple keeps the
        # per-request cost to one dict lookup (the key space is bounded, so is the cache).
        self._children: dict[tuple[str, str, str], tuple[object, object, object]] = {}
        self._blocked_children: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()

    def record_request(
        self,
        category: str,
        group: str,
        action: str,
        tier: str,
        request_bytes: int = 0,
        response_bytes: int = 0,
    ) -> None:
        """One decided HTTP request (allowed or blocked), with the body sizes that went each way."""
        labels = self._labels
        key = (labels.category(category), labels.group(group), L.fold(action, L.ACTIONS))
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(*key),
                self.request_bytes.labels(*key),
                self.response_bytes.labels(*key),
            )
        requests, sent, received = children
        requests.inc()  # type: ignore[attr-defined]
        if request_bytes and request_bytes > 0:
            sent.inc(request_bytes)  # type: ignore[attr-defined]
        if response_bytes and response_bytes > 0:
            received.inc(response_bytes)  # type: ignore[attr-defined]
        if key[2] == "block":
            bkey = (key[0], L.fold(tier, L.TIERS))
            child = self._blocked_children.get(bkey)
            if child is None:
                child = self._blocked_children[bkey] = self.blocked.labels(*bkey)
            child.inc()  # type: ignore[attr-defined]

    def observe_decision(self, seconds: float) -> None:
        self.decision_seconds.observe(max(0.0, float(seconds)))

    def record_tls(self, mode: str) -> None:
        """ "intercepted" | "passthrough" | "refused" (blocked by SNI before any HTTP)."""
        self.tls.labels(L.fold(mode, L.TLS_MODES)).inc()

    def record_safesearch(self, engine: str) -> None:
        self.safesearch.labels(L.fold(engine, L.SAFESEARCH_ENGINES)).inc()

    def record_filter_error(self, stage: str) -> None:
        """A fail-closed event at `stage` (request, connect, tls, safesearch, response): the request was blocked."""
        self.filter_errors.labels(L.fold(stage, L.FILTER_STAGES)).inc()

    def record_reload(self, ok: bool) -> None:
        self.reloads.labels("succeeded" if ok else "rejected").inc()

    def set_policy(
        self,
        version: str,
        loaded_at: float,
        categories: Iterable[str],
        groups: Iterable[str],
        source: str = "file",
    ) -> None:
        """The policy now in force: its categories and groups become the allowed label values."""
        new = L.PolicyLabels(categories, groups)
        with self._lock:
            self._labels = new
            self._policy = PolicyState(
                version=str(version),
                loaded_at=float(loaded_at),
                source=L.fold(source, L.POLICY_SOURCES),
                categories=len(new.categories) - 1,  # without the implicit "uncategorized"
                groups=len(new.groups),
            )
            # Cached children stay valid (a series never changes its labels); only new lookups fold
            # with the new sets. Series of categories that are gone keep their last value.
        self.topsites.keep_categories(new.categories)
