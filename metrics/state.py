"""State read at scrape time: build info, the active policy, the top-sites summary size.

A custom collector (client_python's documented pattern) rather than gauges set by hand, so each
scrape reports what is true now and a policy swap cannot leave a stale `version` series behind.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from classgate.metrics.topsites import TopSites


@dataclass(frozen=True)
class PolicyState:
    version: str  # short content digest: one value at a time, so the label stays bounded
    loaded_at: float
    source: str  # "file" | "sync"
    categories: int
    groups: int
    timezone: str = "UTC"  # the policy's time zone (IANA name): how admins read times
    fallback: bool = False  # the configured policy does not validate: the last good one is enforced


def build_version() -> str:
    try:
        return version("classgate")
    except PackageNotFoundError:  # a source tree that was not installed
        return "0.0.0+unknown"


class StateCollector(Collector):
    def __init__(self, policy: Callable[[], PolicyState | None], topsites: TopSites):
        self._policy = policy
        self._topsites = topsites
        self._build = (build_version(), platform.python_version())

    def collect(self) -> Iterator[Metric]:
        build = GaugeMetricFamily(
            "classgate_build_info", "The running classgate (always 1).", labels=["version", "python_version"]
        )
        build.add_metric(list(self._build), 1)
        yield build
        policy = self._policy()
        if policy is not None:
            info = GaugeMetricFamily(
                "classgate_policy_info", "The policy in force (always 1).", labels=["version", "source"]
            )
            info.add_metric([policy.version, policy.source], 1)
            yield info
            yield GaugeMetricFamily(
                "classgate_policy_loaded_timestamp_seconds",
                "When the policy in force was loaded (unix time).",
                value=policy.loaded_at,
            )
            yield GaugeMetricFamily(
                "classgate_policy_categories", "Categories in the policy in force.", value=policy.categories
            )
            yield GaugeMetricFamily(
                "classgate_policy_groups", "Groups in the policy in force.", value=policy.groups
            )
            yield GaugeMetricFamily(
                "classgate_policy_fallback",
                "1 while the configured policy does not validate and the last good one is enforced instead.",
                value=1 if policy.fallback else 0,
            )
        yield GaugeMetricFamily(
            "classgate_topsites_tracked_domains",
            "Domain counters in use by the top-sites summary (bounded by categories x capacity).",
            value=self._topsites.tracked(),
        )
        yield GaugeMetricFamily(
            "classgate_topsites_capacity_per_category",
            "Domain counters each category's top-sites summary may use.",
            value=self._topsites.capacity,
        )
