"""The student side's counters: warn pages shown, warnings continued, quotas used up; by category x group.

Few events (a warning is a page a student reads, a quota runs out once per device and day), so one lock and a
dict per family; exported at scrape time like the per-request counters, only combinations that happened.
The labels are the policy's own categories and groups, folded by `Metrics` before they reach here: never a
site, never a device.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Final

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

LABELS: Final = ["category", "group"]
# (name, help) of each family, in export order.
FAMILIES: Final = {
    "warnings_shown": ("classgate_warnings_shown",
                       "Warn pages shown (action: warn), by destination category and client group."),
    "warnings_continued": ("classgate_warnings_continued",
                           ("Warnings a student continued past (the site then opens on that device for the "
                            "rule's minutes), by destination category and client group.")),
    "quotas_used_up": ("classgate_quotas_used_up",
                       "Daily quotas that ran out, once per device, rule and day, by category and client group."),
}


class StudentCounters(Collector):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, dict[tuple[str, str], int]] = {family: {} for family in FAMILIES}

    def add(self, family: str, key: tuple[str, str]) -> None:
        with self._lock:
            counts = self._counts[family]
            counts[key] = counts.get(key, 0) + 1

    def value(self, family: str, key: tuple[str, str]) -> int:
        with self._lock:
            return self._counts[family].get(key, 0)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            snapshot = {family: list(counts.items()) for family, counts in self._counts.items()}
        for family, (name, documentation) in FAMILIES.items():
            metric = CounterMetricFamily(name, documentation, labels=LABELS)
            for key, count in snapshot[family]:
                metric.add_metric(list(key), count)
            yield metric
