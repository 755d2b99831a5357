"""The teachers' class actions in force, by group and kind: a gauge read at scrape time.

The proxy hands in a callable that lists the (group, kind) of every action in force now; this collector
folds each into the policy's groups and the closed set of kinds and exports one series per group x kind
(0 included, so a dashboard sees an action start rather than a series appear). No site, no teacher, no id:
those belong in the audit log, never in a label.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from classgate.metrics.labels import OTHER, PolicyLabels, fold

log = logging.getLogger(__name__)

NAME = "classgate_teacher_actions_active"
ActiveActions = Callable[[], Iterable[tuple[str, str]]]


class ClassActionGauge(Collector):
    def __init__(self, active: ActiveActions, labels: Callable[[], PolicyLabels], kinds: tuple[str, ...]) -> None:
        self._active = active
        self._labels = labels
        self._kinds = kinds

    def collect(self) -> Iterator[Metric]:
        labels = self._labels()
        counts = {(group, kind): 0 for group in sorted(labels.groups) for kind in self._kinds}
        try:
            for group, kind in self._active():
                key = (labels.group(group), fold(kind, self._kinds))
                counts[key] = counts.get(key, 0) + 1
        except Exception:
            log.warning("cannot list the class actions in force for metrics", exc_info=True)
        family = GaugeMetricFamily(NAME, "Teachers' class actions in force, by group and kind (allow, block, "
                                         "lock, pause).", labels=["group", "kind"])
        for (group, kind), count in counts.items():
            if count or (group != OTHER and kind != OTHER):
                family.add_metric([group, kind], count)
        yield family
