"""The gateway resolver's counters: queries by category x group x action, like the requests, kept as numbers.

Touched on every DNS query, so built like metrics/traffic.py: one lock and a dict increment per query, the
family made at scrape time from keys already folded to the bounded label sets. Only combinations that happened
are exported (as for requests); the small closed-set counters (special answers, stripped records, failures,
cache) are `LabelledCounter`s in the registry, present from the start at 0.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

QUERY_LABELS = ["category", "group", "action"]


class DnsQueryCounter(Collector):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queries: dict[tuple[str, str, str], int] = {}

    def add(self, key: tuple[str, str, str]) -> None:
        with self._lock:
            self._queries[key] = self._queries.get(key, 0) + 1

    def value(self, key: tuple[str, str, str]) -> int:
        with self._lock:
            return self._queries.get(key, 0)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            queries = list(self._queries.items())
        family = CounterMetricFamily(
            "classgate_dns_queries",
            "DNS queries the gateway's resolver answered by the policy, by destination category, client group "
            "and action (block: the block answer or NXDOMAIN).",
            labels=QUERY_LABELS,
        )
        for key, count in queries:
            family.add_metric(list(key), count)
        yield family
