"""The series bound in docs/metrics.md (metrics.cardinality) matches what a Metrics really exports."""

from __future__ import annotations

import itertools

import pytest

from classgate.metrics import Metrics
from classgate.metrics.cardinality import max_series
from classgate.proxy.metric_labels import METRIC_LABELS as V
from classgate.proxy.metric_labels import gateway_metrics


def count_series(m: Metrics) -> dict[str, int]:
    counts: dict[str, int] = {}
    for family in m.registry.collect():
        name = family.name
        if name.startswith("process_"):
            key = "process"
        elif name.startswith("classgate_sync"):
            key = "classgate_sync"
        elif name == "classgate_teacher_actions_active":
            key = name
        elif family.type in ("counter",):
            key = name + "_total"
        elif family.type == "histogram":
            key = name
        else:
            key = "state"
        counts[key] = counts.get(key, 0) + len(family.samples)
    return counts


@pytest.mark.parametrize(("n_categories", "n_groups"), [(0, 0), (3, 2), (8, 3), (20, 7)])
def test_every_combination_stays_within_the_bound(n_categories: int, n_groups: int) -> None:
    m = gateway_metrics()
    categories = [f"cat{i}" for i in range(n_categories)]
    groups = [f"grp{i}" for i in range(n_groups)]
    m.set_policy("v1", 0.0, categories, groups, "file")
    # Every allowed value, plus values that must fold (each fold adds at most the "other" series).
    for cat, grp, action, tier in itertools.product(
        [*categories, "uncategorized", "not-a-category.example"],
        [*groups, "default", "10.1.2.3"],
        [*V.actions, "weird"],
        [*V.tiers, "weird"],
    ):
        m.record_request(cat, grp, action, tier, 1, 1)
        m.record_dns_query(cat, grp, action)
        m.record_warning_shown(cat, grp)
        m.record_warning_continued(cat, grp)
        m.record_quota_used_up(cat, grp)
    for mode in (*V.tls_modes, "weird"):
        m.record_tls(mode)
    for engine in (*V.safesearch_engines, "weird"):
        m.record_safesearch(engine)
    for stage in (*V.filter_stages, "weird"):
        m.record_filter_error(stage)
    for part in (*V.malformed_parts, "weird"):
        m.record_malformed(part)
    for mode in (*V.tls_modes, "weird"):
        m.record_tls_ech(mode)
    for kind in (*V.dns_special_answers, "weird"):
        m.record_dns_special(kind)
    for record_type in (*V.dns_stripped_types, "weird"):
        m.record_dns_ech_stripped(record_type, 2)
    for reason in (*V.dns_failures, "weird"):
        m.record_dns_failure(reason)
    for result in (*V.dns_cache_results, "weird"):
        m.record_dns_cache(result)
    m.observe_decision(0.001)
    m.record_reload(True)
    m.record_reload(False)
    m.record_device_limit()
    m.sync.record_attempt()
    m.sync.record_success()
    m.sync.set_metadata_expiry(1.0)
    m.sync.set_active_bundle("7")
    m.watch_class_actions(lambda: [(g, k) for g in [*groups, "default", "10.1.2.3"]
                                   for k in [*V.class_action_kinds, "weird"]])
    assert count_series(m) == max_series(V, n_categories, n_groups)


def test_series_do_not_grow_with_hosts_or_clients() -> None:
    m = gateway_metrics(process_metrics=False)
    m.set_policy("v1", 0.0, ["games"], ["students"], "file")
    for i in range(2000):
        m.record_request(f"site{i}.example", f"10.0.{i // 250}.{i % 250}", "allow", "default", 1, 1)
        m.topsites.observe("uncategorized", f"www.site{i}.example", f"10.0.{i // 250}.{i % 250}")
    counts = count_series(m)
    assert counts["classgate_requests_total"] == 1  # everything folded into other x other x allow
    assert m.topsites.tracked() <= m.topsites.capacity
