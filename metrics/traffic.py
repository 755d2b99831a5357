"""The per-request counters and the decision-time histogram, kept as plain numbers.

These are the only metrics touched on every request. prometheus_client's Counter and Histogram take
a lock and run checks per `inc()`/`observe()` (three or four of them per request); here one request is
one lock and a few list increments, and the families are built at scrape time (the client_python
custom-collector pattern, as for the state). Keys are already folded to the bounded label sets.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

REQUEST_LABELS = ["category", "group", "action"]

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


class TrafficCounters(Collector):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (category, group, action) -> [requests, request bytes, response bytes]
        self._requests: dict[tuple[str, str, str], list[int]] = {}
        self._blocked: dict[tuple[str, str], int] = {}  # (category, tier) -> requests
        self._buckets = [0] * (len(DECISION_BUCKETS) + 1)  # per bucket, not cumulative; last is +Inf
        self._sum = 0.0

    def add(
        self, key: tuple[str, str, str], blocked: tuple[str, str] | None, sent: int, received: int
    ) -> None:
        with self._lock:
            counts = self._requests.get(key)
            if counts is None:
                counts = self._requests[key] = [0, 0, 0]
            counts[0] += 1
            counts[1] += sent
            counts[2] += received
            if blocked is not None:
                self._blocked[blocked] = self._blocked.get(blocked, 0) + 1

    def observe(self, seconds: float) -> None:
        i = bisect.bisect_left(DECISION_BUCKETS, seconds)  # the first bucket with seconds <= le
        with self._lock:
            self._buckets[i] += 1
            self._sum += seconds

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            requests = [(k, list(v)) for k, v in self._requests.items()]
            blocked: list[tuple[tuple[str, str], int]] = list(self._blocked.items())
            buckets, total = list(self._buckets), self._sum
        for i, (name, doc) in enumerate(
            (
                (
                    "classgate_requests",
                    "HTTP requests decided, by destination category, client group and action.",
                ),
                ("classgate_request_bytes", "Bytes of request bodies sent by clients."),
                ("classgate_response_bytes", "Bytes of response bodies received by clients."),
            )
        ):
            family = CounterMetricFamily(name, doc, labels=REQUEST_LABELS)
            for key, counts in requests:
                family.add_metric(list(key), counts[i])
            yield family
        family = CounterMetricFamily(
            "classgate_blocked_requests",
            "Requests blocked, by category and by the tier of the rule that blocked.",
            labels=["category", "tier"],
        )
        for blocked_key, count in blocked:
            family.add_metric(list(blocked_key), count)
        yield family
        cumulative, running = [], 0
        for bound, count in zip((*DECISION_BUCKETS, float("inf")), buckets):
            running += count
            cumulative.append((floatToGoString(bound), running))
        yield HistogramMetricFamily(
            "classgate_decision_duration_seconds",
            "Time to decide one request.",
            buckets=cumulative,
            sum_value=total,
        )
