"""One metrics endpoint for a gateway of several workers: their expositions merged at scrape time.

Each worker (agent/workers.py) keeps its own `Metrics` and serves it on a loopback port; the supervisor's
endpoint asks every worker at each scrape and answers with one exposition, as if one process had counted
everything. Merging at scrape time rather than prometheus_client's multiprocess mode keeps the custom
collectors (metrics/traffic.py's plain numbers, the scrape-time state) as they are, and nothing is shared
between processes but text over loopback.

How a series merges is decided by its family: counters and histograms add up; a gauge that describes the
gateway (which policy, its load time, the build) is the same in every worker and is kept once (the largest,
so a worker that has already reloaded wins); `SUMMED_GAUGES` add up (memory, open files); `OLDEST_GAUGES`
keep the smallest (process start). `PER_GATEWAY_COUNTERS` count events each worker sees for the whole
gateway (a policy reload happens in every worker): the gateway's count is the smallest, so "reloaded" means
every worker enforces the new policy; `EVERY_WORKER_GAUGES` likewise (the synced bundle in force).
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from classgate.metrics.topsites import merge_exports

log = logging.getLogger(__name__)

SUMMED_GAUGES: Final = frozenset({
    "process_resident_memory_bytes", "process_virtual_memory_bytes", "process_open_fds",
    "classgate_topsites_tracked_domains",
})
OLDEST_GAUGES: Final = frozenset({"process_start_time_seconds"})
PER_GATEWAY_COUNTERS: Final = frozenset({"classgate_policy_reloads"})
# What every worker must have for the gateway to have it: the smallest, shown only when each worker has one
# (the Department bundle the whole gateway enforces).
EVERY_WORKER_GAUGES: Final = frozenset({"classgate_sync_bundle_version"})
SCRAPE_TIMEOUT_SECONDS: Final = 3.0

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]  # sample name, sorted labels


@dataclass
class _Family:
    name: str
    documentation: str
    type: str
    series: dict[SeriesKey, float]


Exposition = dict[str, _Family]


def _parse(text: str) -> Exposition:
    out: Exposition = {}
    for family in text_string_to_metric_families(text):
        f = out.setdefault(family.name, _Family(family.name, family.documentation, family.type, {}))
        for sample in family.samples:
            f.series[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _rule(name: str, kind: str, sample: str) -> str:
    if sample.endswith("_created"):
        return "min"
    if kind in ("gauge", "info", "stateset"):
        if name in EVERY_WORKER_GAUGES:
            return "min"
        if name in SUMMED_GAUGES:
            return "sum"
        return "min" if name in OLDEST_GAUGES else "max"
    return "min" if name in PER_GATEWAY_COUNTERS else "sum"


def _combine(parts: list[Exposition], workers: bool = True) -> Exposition:
    """Merge by the rules; `workers`: the parts are the workers' own (not a retired share)."""
    merged: Exposition = {}
    for part in parts:
        for name, family in part.items():
            into = merged.setdefault(name, _Family(name, family.documentation, family.type, {}))
            for key, value in family.series.items():
                old = into.series.get(key)
                rule = _rule(name, family.type, key[0])
                if old is None:
                    into.series[key] = value
                elif rule == "sum":
                    into.series[key] = old + value
                else:
                    into.series[key] = min(old, value) if rule == "min" else max(old, value)
    if workers and len(parts) > 1:  # what not every worker has, the gateway has not (yet)
        for name in (PER_GATEWAY_COUNTERS | EVERY_WORKER_GAUGES) & merged.keys():
            for key in list(merged[name].series):
                if any(key not in p.get(name, _Family(name, "", "", {})).series for p in parts):
                    if name in EVERY_WORKER_GAUGES:
                        del merged[name].series[key]
                    else:
                        merged[name].series[key] = 0.0
    return merged


def _metrics(exposition: Exposition) -> list[Metric]:
    out = []
    for family in exposition.values():
        metric = Metric(family.name, family.documentation, family.type)
        for (sample, labels), value in family.series.items():
            metric.add_sample(sample, dict(labels), value)
        out.append(metric)
    return out


def merge_families(expositions: Iterable[str]) -> list[Metric]:
    """The families of several Prometheus text expositions, merged series by series (see the module doc)."""
    return _metrics(_combine([_parse(t) for t in expositions]))


def _shifted(part: Exposition, offset: Exposition) -> Exposition:
    """`part` with the per-gateway counters of `offset` added (a restarted worker starts from the gateway's)."""
    out = dict(part)
    for name in PER_GATEWAY_COUNTERS & offset.keys():
        family = part.get(name)
        base = offset[name]
        series = dict(base.series) if family is None else {k: v + base.series.get(k, 0.0)
                                                           for k, v in family.series.items()}
        for k, v in base.series.items():
            series.setdefault(k, v)
        out[name] = _Family(name, base.documentation, base.type, series)
    return out


class GatewayMerge:
    """Merges the workers' expositions scrape after scrape, keeping the gateway's counters monotonic.

    A worker that stopped is not forgotten: its last scraped counters stay in the sum (until its replacement
    is seen, then as a retired share), so a restart does not look like a counter reset to Prometheus. Counts
    between its last scrape and its death are lost. A replacement's per-gateway counters start from the
    gateway's value at that time.
    """

    def __init__(self) -> None:
        self._last: dict[int, tuple[int, Exposition]] = {}  # worker index -> (pid, last exposition)
        self._offsets: dict[tuple[int, int], Exposition] = {}
        self._retired: Exposition = {}
        self._previous: Exposition = {}

    def merge(self, scraped: list[tuple[int, int, str]]) -> list[Metric]:
        """`scraped`: (worker index, pid, exposition text) of each worker that answered this scrape."""
        for index, pid, text in scraped:
            last = self._last.get(index)
            if last is not None and last[0] != pid:
                retired = {n: f for n, f in last[1].items() if f.type not in ("gauge", "info", "stateset")
                           and n not in PER_GATEWAY_COUNTERS}
                self._retired = _combine([self._retired, retired], workers=False)
                self._offsets.pop((index, last[0]), None)
                self._offsets[(index, pid)] = {n: f for n, f in self._previous.items() if n in PER_GATEWAY_COUNTERS}
            self._last[index] = (pid, _parse(text))
        parts = [_shifted(exp, self._offsets.get((index, pid), {})) for index, (pid, exp) in self._last.items()]
        merged = _combine(parts)
        if self._retired:
            merged = _combine([merged, self._retired], workers=False)
        self._previous = merged
        return _metrics(merged)


@dataclass(frozen=True)
class WorkerEndpoint:
    """Where one worker serves its own metrics (loopback), as the supervisor knows it now."""

    index: int
    pid: int
    url: str  # http://127.0.0.1:PORT


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT_SECONDS) as response:
            return bytes(response.read(64 * 1024 * 1024))
    except OSError as e:  # a worker restarting: its share is missing from this one scrape
        log.debug("worker metrics at %s not read: %s", url, e)
        return None


class _WorkersCollector(Collector):
    def __init__(self, endpoints: Callable[[], list[WorkerEndpoint]]) -> None:
        self._endpoints = endpoints
        self._merge = GatewayMerge()
        self._lock = threading.Lock()  # scrapes may come in parallel (a threading server)

    def collect(self) -> Iterator[Metric]:
        scraped = []
        for e in self._endpoints():
            body = _get(f"{e.url}/metrics")
            if body is not None:
                scraped.append((e.index, e.pid, body.decode("utf-8", "replace")))
        with self._lock:
            merged = self._merge.merge(scraped)
        yield from merged


class _MergedTopSites:
    def __init__(self, endpoints: Callable[[], list[WorkerEndpoint]]) -> None:
        self._endpoints = endpoints
        self.timezone = "UTC"

    def snapshot(self, n: int = 20) -> dict[str, object]:
        exports = []
        for endpoint in self._endpoints():
            body = _get(f"{endpoint.url}/topsites-export.json")
            if body is None:
                continue
            try:
                doc = json.loads(body)
            except ValueError:
                continue
            self.timezone = str(doc.pop("timezone", self.timezone))
            exports.append(doc)
        return merge_exports(exports, n)


class MergedMetrics:
    """What metrics.server serves for a gateway of workers: `registry` (the workers' merged plus the
    supervisor's own `extra` collectors) and `topsites` (merged summaries)."""

    def __init__(self, endpoints: Callable[[], list[WorkerEndpoint]], extra: Iterable[Collector] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_WorkersCollector(endpoints))
        for collector in extra:
            self.registry.register(collector)
        self.topsites = _MergedTopSites(endpoints)

    @property
    def timezone(self) -> str:
        return self.topsites.timezone
