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

from prometheus_client import CollectorRegistry, ProcessCollector

from classgate.metrics import labels as L
from classgate.metrics.class_actions import ActiveActions, ClassActionGauge
from classgate.metrics.counters import LabelledCounter
from classgate.metrics.dns import DnsQueryCounter
from classgate.metrics.state import PolicyState, StateCollector
from classgate.metrics.student import StudentCounters
from classgate.metrics.sync import SyncMetrics
from classgate.metrics.topsites import TopSites
from classgate.metrics.traffic import TrafficCounters

log = logging.getLogger(__name__)


class Metrics:
    """Everything classgate exports, in its own `CollectorRegistry` (one instance per process)."""

    def __init__(
        self,
        vocabulary: L.LabelVocabulary,
        *,
        process_metrics: bool = True,
        clock: Callable[[], float] = time.time,
        topsites_capacity: int = 128,
        topsites_min_clients: int = 3,
    ):
        self.registry = CollectorRegistry(auto_describe=True)
        self.vocabulary = v = vocabulary
        self._labels = L.PolicyLabels(v)
        r = self.registry
        # Touched on every request: plain numbers exported at scrape time (see metrics/traffic.py).
        self.traffic = TrafficCounters()
        r.register(self.traffic)
        self.tls = LabelledCounter(
            "classgate_tls_connections",
            "HTTPS connections by handling: intercepted, passed through untouched, refused by SNI.",
            "mode", v.tls_modes,
        )
        self.safesearch = LabelledCounter(
            "classgate_safesearch_rewrites", "Requests rewritten to enforce SafeSearch, by engine.",
            "engine", v.safesearch_engines,
        )
        self.filter_errors = LabelledCounter(
            "classgate_filter_errors",
            "Internal errors inside the filter; each one was answered with a block (fail closed).",
            "stage", v.filter_stages, show_other=True,
        )
        self.malformed = LabelledCounter(
            "classgate_malformed_requests",
            "Requests refused with 400 before any decision because they break HTTP's grammar, by the part.",
            "part", v.malformed_parts,
        )
        self.reloads = LabelledCounter(
            "classgate_policy_reloads", "Policy loads: succeeded, or rejected (the previous policy stayed).",
            "result", L.RELOAD_RESULTS,
        )
        self.tls_ech = LabelledCounter(
            "classgate_tls_ech_connections",
            "ClientHellos with Encrypted Client Hello behind a known ECH front (the destination hidden), by "
            "handling: intercepted (inspected groups), refused, passed through (tls.ech: allow).",
            "mode", v.tls_modes,
        )
        self.connections_refused = LabelledCounter(
            "classgate_connections_refused",
            "Connections the gateway closed before reading from them: device_limit, a device already had its "
            "limit of connections open (classgate run --device-connections).",
            "reason", L.CONNECTION_REFUSALS,
        )
        # The gateway's resolver (classgate run --dns).
        self.dns_queries = DnsQueryCounter()
        self.dns_special = LabelledCounter(
            "classgate_dns_special_answers",
            "DNS answers by the resolver's own rule: Firefox's canary and iCloud Private Relay (NXDOMAIN), "
            "encrypted-DNS resolver names (the block answer), SafeSearch (a CNAME to the engine's safe host).",
            "kind", v.dns_special_answers,
        )
        self.dns_stripped = LabelledCounter(
            "classgate_dns_ech_stripped_records",
            "HTTPS and SVCB records from which the resolver removed the ech parameter (or dropped for it).",
            "type", v.dns_stripped_types,
        )
        self.dns_failures = LabelledCounter(
            "classgate_dns_failed_queries",
            "DNS queries without an ordinary answer: malformed (FORMERR), unsupported, not from the LAN "
            "(REFUSED), rate limited or overloaded (dropped), upstream failed or error (SERVFAIL).",
            "reason", v.dns_failures,
        )
        self.dns_cache = LabelledCounter(
            "classgate_dns_cache_lookups", "Upstream lookups of the resolver served from its cache (hit) or not.",
            "result", v.dns_cache_results,
        )
        # Warn-and-continue and quotas (proxy/warn.py).
        self.student = StudentCounters()
        for counter in (self.tls, self.safesearch, self.filter_errors, self.malformed, self.reloads, self.tls_ech,
                        self.connections_refused,
                        self.dns_queries, self.dns_special, self.dns_stripped, self.dns_failures, self.dns_cache,
                        self.student):
            r.register(counter)

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

    @property
    def timezone(self) -> str:
        """The time zone of the policy in force ("UTC" before one is loaded)."""
        policy = self._policy
        return policy.timezone if policy is not None else "UTC"

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
            v = self.vocabulary
            key = (labels.category(category), labels.group(group), L.fold(action, v.actions))
            blocked = (key[0], L.fold(tier, v.tiers)) if key[2] == "block" else None
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
        self.tls.inc(mode)

    def record_safesearch(self, engine: str) -> None:
        self.safesearch.inc(engine)

    def record_filter_error(self, stage: str) -> None:
        """A fail-closed event at `stage` (request, connect, tls, safesearch, response): the request was blocked."""
        self.filter_errors.inc(stage)

    def record_malformed(self, part: str) -> None:
        """A request refused as malformed (400) before any decision; `part` says what was wrong."""
        self.malformed.inc(part)

    def record_device_limit(self) -> None:
        """A connection closed at once: its device already had its limit of connections open."""
        self.connections_refused.inc("device_limit")

    def record_tls_ech(self, mode: str) -> None:
        """A ClientHello with real ECH behind a known front: "intercepted" | "refused" | "passthrough"."""
        self.tls_ech.inc(mode)

    def record_dns_query(self, category: str, group: str, action: str) -> None:
        """One DNS query answered by the policy's decision."""
        try:
            labels = self._labels
            key = (labels.category(category), labels.group(group), L.fold(action, self.vocabulary.actions))
            self.dns_queries.add(key)
        except (TypeError, ValueError):
            log.debug("record_dns_query: bad arguments", exc_info=True)

    def record_dns_special(self, kind: str) -> None:
        self.dns_special.inc(kind)

    def record_dns_ech_stripped(self, record_type: str, count: int) -> None:
        self.dns_stripped.add(record_type, count)

    def record_dns_failure(self, reason: str) -> None:
        self.dns_failures.inc(reason)

    def record_dns_cache(self, result: str) -> None:
        self.dns_cache.inc(result)

    def watch_class_actions(self, active: ActiveActions) -> None:
        """Export the teachers' class actions in force: `active()` lists the (group, kind) of each, at scrape
        time. Called once, by the gateway builder."""
        self.registry.register(ClassActionGauge(active, lambda: self._labels, self.vocabulary.class_action_kinds))

    def record_warning_shown(self, category: str, group: str) -> None:
        """A warn page shown (action: warn)."""
        self._record_student("warnings_shown", category, group)

    def record_warning_continued(self, category: str, group: str) -> None:
        """A student continued past a warning."""
        self._record_student("warnings_continued", category, group)

    def record_quota_used_up(self, category: str, group: str) -> None:
        """A device's daily quota on a rule ran out (once per device, rule and day)."""
        self._record_student("quotas_used_up", category, group)

    def _record_student(self, family: str, category: str, group: str) -> None:
        labels = self._labels
        self.student.add(family, (labels.category(category), labels.group(group)))

    def record_reload(self, ok: bool) -> None:
        self.reloads.inc("succeeded" if ok else "rejected")

    def set_policy(
        self,
        version: str,
        loaded_at: float,
        categories: Iterable[str],
        groups: Iterable[str],
        source: str = "file",
        timezone: str = "UTC",
        fallback: bool = False,
    ) -> None:
        """The policy now in force: its categories and groups become the allowed label values; its time zone
        is how /stats.json's readers show times."""
        new = L.PolicyLabels(self.vocabulary, categories, groups)
        with self._lock:
            self._labels = new
            self._policy = PolicyState(
                version=str(version),
                loaded_at=float(loaded_at),
                source=L.fold(source, self.vocabulary.policy_sources),
                categories=len(new.categories) - 1,  # without the implicit "uncategorized"
                groups=len(new.groups),
                timezone=str(timezone),
                fallback=bool(fallback),
            )
            # Only new events fold with the new sets; series of categories that are gone keep
            # their last value.
        self.topsites.keep_categories(new.categories)
