"""How the supervisor merges its workers' metrics (metrics/merge.py) and top sites (metrics/topsites.py), and
how long it waits before it starts a stopped worker again (agent/supervisor.py)."""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from classgate.agent.supervisor import restart_pause
from classgate.metrics.merge import GatewayMerge, merge_families
from classgate.metrics.topsites import TopSites, merge_exports

REQUESTS = "# TYPE classgate_requests_total counter\n"
RELOADS = "# TYPE classgate_policy_reloads_total counter\n"
INFO = "# TYPE classgate_policy_info gauge\n"
RSS = "# TYPE process_resident_memory_bytes gauge\n"
START = "# TYPE process_start_time_seconds gauge\n"
HIST = "# TYPE classgate_decision_seconds histogram\n"


@pytest.mark.parametrize(
    ("workers", "expected"),
    [
        # Counters add up, series by series; a series one worker lacks is kept.
        ([REQUESTS + 'classgate_requests_total{action="allow"} 2\n',
          REQUESTS + 'classgate_requests_total{action="allow"} 3\nclassgate_requests_total{action="block"} 1\n'],
         {'classgate_requests_total{action="allow"}': 5.0, 'classgate_requests_total{action="block"}': 1.0}),
        # A reload happens in every worker: the gateway reloaded once, when the last worker did.
        ([RELOADS + 'classgate_policy_reloads_total{result="succeeded"} 1\n'] * 2,
         {'classgate_policy_reloads_total{result="succeeded"}': 1.0}),
        ([RELOADS + 'classgate_policy_reloads_total{result="succeeded"} 2\n',
          RELOADS + 'classgate_policy_reloads_total{result="succeeded"} 1\n'],
         {'classgate_policy_reloads_total{result="succeeded"}': 1.0}),
        ([RELOADS + 'classgate_policy_reloads_total{result="succeeded"} 1\n',
          RELOADS + 'classgate_policy_reloads_total{result="rejected"} 1\n'],
         {'classgate_policy_reloads_total{result="succeeded"}': 0.0,
          'classgate_policy_reloads_total{result="rejected"}': 0.0}),
        # The policy in force is the same gauge in each: kept once; mid-reload both versions show.
        ([INFO + 'classgate_policy_info{version="a"} 1\n', INFO + 'classgate_policy_info{version="a"} 1\n'],
         {'classgate_policy_info{version="a"}': 1.0}),
        ([INFO + 'classgate_policy_info{version="a"} 1\n', INFO + 'classgate_policy_info{version="b"} 1\n'],
         {'classgate_policy_info{version="a"}': 1.0, 'classgate_policy_info{version="b"}': 1.0}),
        # Memory adds up; the gateway started when its oldest worker did.
        ([RSS + "process_resident_memory_bytes 100\n", RSS + "process_resident_memory_bytes 50\n"],
         {"process_resident_memory_bytes": 150.0}),
        ([START + "process_start_time_seconds 20\n", START + "process_start_time_seconds 10\n"],
         {"process_start_time_seconds": 10.0}),
        # Histograms: buckets, counts and sums add up.
        ([HIST + 'classgate_decision_seconds_bucket{le="0.001"} 4\nclassgate_decision_seconds_bucket{le="+Inf"} 5\n'
          "classgate_decision_seconds_count 5\nclassgate_decision_seconds_sum 0.01\n"] * 2,
         {'classgate_decision_seconds_bucket{le="0.001"}': 8.0, 'classgate_decision_seconds_bucket{le="+Inf"}': 10.0,
          "classgate_decision_seconds_count": 10.0, "classgate_decision_seconds_sum": 0.02}),
        # The synced bundle in force: the one every worker enforces, none while one worker has none yet.
        (["# TYPE classgate_sync_bundle_version gauge\nclassgate_sync_bundle_version 3\n",
          "# TYPE classgate_sync_bundle_version gauge\nclassgate_sync_bundle_version 2\n"],
         {"classgate_sync_bundle_version": 2.0}),
        (["# TYPE classgate_sync_bundle_version gauge\nclassgate_sync_bundle_version 3\n",
          "# TYPE classgate_build_info gauge\nclassgate_build_info 1\n"],
         {"classgate_build_info": 1.0}),
        ([], {}),
    ],
)
def test_merge_families(workers, expected):
    merged = {}
    for family in merge_families(workers):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            merged[f"{s.name}{{{labels}}}" if labels else s.name] = pytest.approx(s.value)
    assert merged == expected


def _requests(n: float, reloads: float) -> str:
    return (REQUESTS + f'classgate_requests_total{{action="allow"}} {n}\n' + RELOADS
            + f'classgate_policy_reloads_total{{result="succeeded"}} {reloads}\n')


def _values(metrics) -> dict[str, float]:
    return {s.name: s.value for m in metrics for s in m.samples}


@pytest.mark.parametrize(
    ("scrapes", "expected"),
    [
        # (worker index, pid, requests, reloads) per scrape -> (requests, reloads) the gateway shows after each
        ([[(0, 10, 5, 1), (1, 11, 7, 1)], [(0, 10, 6, 1), (1, 11, 9, 1)]], [(12, 1), (15, 1)]),
        # Worker 1 dies after 9 requests: its count stays while it is down, and after its replacement (pid 12)
        # starts from 0, and the replacement's reloads start from the gateway's.
        ([[(0, 10, 5, 1), (1, 11, 9, 1)], [(0, 10, 6, 1)], [(0, 10, 7, 1), (1, 12, 2, 0)],
          [(0, 10, 8, 2), (1, 12, 3, 1)]],
         [(14, 1), (15, 1), (18, 1), (20, 2)]),
    ],
)
def test_a_restarted_worker_keeps_the_gateways_counters_monotonic(scrapes, expected):
    merge = GatewayMerge()
    shown = []
    for scrape in scrapes:
        values = _values(merge.merge([(i, pid, _requests(n, r)) for i, pid, n, r in scrape]))
        shown.append((values["classgate_requests_total"], values["classgate_policy_reloads_total"]))
    assert shown == expected


def test_merged_families_expose_as_valid_prometheus_text():
    class Fixed(Collector):
        def collect(self):
            yield from merge_families([REQUESTS + 'classgate_requests_total{action="allow"} 2\n'] * 2)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fixed())
    text = generate_latest(registry).decode()
    assert "# TYPE classgate_requests_total counter" in text
    assert 'classgate_requests_total{action="allow"} 4.0' in text


def _tracker(key: bytes, capacity: int = 128) -> TopSites:
    t = TopSites(lambda c: str(c), capacity=capacity, min_clients=3, clock=lambda: 1000.0)
    t.share_key(key)
    return t


@pytest.mark.parametrize("seed", range(5))
def test_merging_workers_equals_one_process_that_saw_everything(seed):
    """Twin test: requests split over two workers at random, merged, read as one tracker reads them all."""
    rng = random.Random(seed)
    key = bytes(16)
    whole, workers = _tracker(key), [_tracker(key), _tracker(key)]
    for _ in range(400):
        category = rng.choice(["news", "games"])
        host = f"www.site{rng.randrange(30)}.vn"
        client = f"10.0.0.{rng.randrange(6)}"
        whole.observe(category, host, client)
        rng.choice(workers).observe(category, host, client)
    assert merge_exports([w.export() for w in workers], 20) == whole.snapshot(20)


@pytest.mark.parametrize(
    ("per_worker", "shown"),
    [
        # (client, worker) pairs for one domain; min_clients is 3.
        ([("a", 0), ("b", 0), ("c", 1)], True),  # three devices, on two workers: shown once merged
        ([("a", 0), ("b", 0), ("a", 1)], False),  # the same device on both workers counts once
        ([("a", 0), ("b", 1)], False),
    ],
)
def test_a_site_is_shown_once_enough_devices_asked_whichever_worker_they_reached(per_worker, shown):
    workers = [_tracker(b"k" * 16), _tracker(b"k" * 16)]
    for client, index in per_worker:
        workers[index].observe("news", "vnexpress.net", client)
    top = merge_exports([w.export() for w in workers], 20)["categories"]["news"]["top"]
    assert bool(top) is shown
    assert not top or top[0]["requests"] == len(per_worker)


@pytest.mark.parametrize("full_first", [False, True])
def test_a_domain_missing_from_a_full_summary_gets_that_summarys_smallest_count_as_error(full_first):
    """Whichever order the supervisor reads its workers in (the merge once depended on it)."""
    small, full = _tracker(bytes(16), capacity=2), _tracker(bytes(16), capacity=2)
    for host, n in (("a.vn", 5), ("b.vn", 3)):
        for i in range(n):
            full.observe("news", host, f"10.0.0.{i}")
    for i in range(4):
        small.observe("news", "c.vn", f"10.0.0.{i}")
    exports = [full.export(), small.export()] if full_first else [small.export(), full.export()]
    rows = {r["domain"]: r for r in merge_exports(exports, 20)["categories"]["news"]["top"]}
    assert rows["c.vn"]["requests"] == 4 + 3 and rows["c.vn"]["requests_at_least"] == 4
    assert rows["a.vn"]["requests_at_least"] == 5  # the small summary was not full: no extra error


@pytest.mark.parametrize(
    ("lived", "failures", "expected"),
    [
        (3600.0, 0, (0, 0.0)),  # died after a steady run: at once
        (3600.0, 5, (0, 0.0)),  # a steady run forgives earlier crashes
        (1.0, 0, (1, 0.5)),  # died at its start: a pause, growing
        (1.0, 1, (2, 1.0)),
        (1.0, 3, (4, 4.0)),
        (9.9, 6, (7, 30.0)),  # capped
        (0.1, 40, (41, 30.0)),
    ],
)
def test_a_worker_that_keeps_dying_at_its_start_is_retried_after_a_growing_pause(lived, failures, expected):
    assert restart_pause(lived, failures) == expected
