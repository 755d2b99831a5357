"""Event counters with one label whose values are fixed up front, exported at scrape time.

prometheus_client's `Counter` would do, but it adds a `_created` series per label value unless that is
switched off process-wide (a global setting other libraries in the process would feel); these families
are built at scrape time like the per-request counters (metrics/traffic.py), with every value present
from the start at 0 so `rate()` and alerts see the first event instead of a series appearing from nowhere.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from classgate.metrics.labels import OTHER, fold


class LabelledCounter(Collector):
    """`name_total{label=...}` for a closed set of values; anything else is counted as "other"."""

    def __init__(self, name: str, documentation: str, label: str, values: Iterable[str], *,
                 show_other: bool = False) -> None:
        """`show_other`: export the "other" series from the start too (else once something folds into it)."""
        self.name, self.documentation, self.label = name, documentation, label
        self._values = tuple(values)
        self._counts = dict.fromkeys((*self._values, OTHER) if show_other else self._values, 0)
        self._lock = threading.Lock()

    def inc(self, value: str) -> None:
        self.add(value, 1)

    def add(self, value: str, amount: int) -> None:
        key = fold(value, self._values)
        if not isinstance(amount, int) or amount <= 0:  # a counter only goes up; a caller bug counts nothing
            return
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + amount

    def value(self, value: str) -> int:
        with self._lock:
            return self._counts.get(value, 0)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=[self.label])
        with self._lock:
            for value, count in self._counts.items():
                family.add_metric([value], count)
        yield family
