"""`Metrics`: the one registry of a classgate process and the methods the proxy calls per event.

Events (requests, TLS handshakes, rewrites, errors, reloads) are counted directly on prometheus_client
counters. State that exists at scrape time (which policy is active, build info, top-sites size) comes
from `metrics.state.StateCollector`, and the sync state from `metrics.sync.SyncMetrics`.

Every method takes plain strings and never raises: a metrics problem must not turn into a request
the filter failed to decide. Values outside the bounded sets are folded into "other".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, ProcessCollector, disable_created_metrics

from metrics import labels as L
from metrics.state import PolicyState, StateCollector
from metrics.sync import SyncMetrics
from metrics.topsites import TopSites
from metrics.traffic import TrafficCounters

log = logging.getLogger(__name__)

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
        # Touched on every request: plain numbers exported at scrape time (see metrics/traffic.py).
        self.traffic = TrafficCounters()
        r.register(self.traffic)
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
        try:
            labels = self._labels
            key = (labels.category(category), labels.group(group), L.fold(action, L.ACTIONS))
            blocked = (key[0], L.fold(tier, L.TIERS)) if key[2] == "block" else None
            sent = request_bytes if request_bytes and request_bytes > 0 else 0
            received = response_bytes if response_bytes and response_bytes > 0 else 0
            self.traffic.add(key, blocked, int(sent), int(received))
        except (TypeError, ValueError):  # a caller bug must not break the request being counted
            log.debug("record_request: bad arguments", exc_info=True)

    def observe_decision(self, seconds: float) -> None:
        try:
            self.traffic.observe(max(0.0, float(seconds)))
        except (TypeError, ValueError):
            log.debug("observe_decision: bad argument", exc_info=True)

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
            # Only new events fold with the new sets; series of categories that are gone keep
            # their last value.
        self.topsites.keep_categories(new.categories)
