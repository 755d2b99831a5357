"""A real Prometheus scrapes a real `classgate run` while traffic flows; the dashboard's own queries
(read from deploy/grafana/classgate.json) must parse, return data and give the expected values.

A second target is a gateway syncing from a real Department repository (metrics_sync_gateway.py),
so the sync panels have data too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.metrics.metrics_e2e import (
    ORIGIN_BODY,
    Client,
    Gateway,
    Origin,
    Prometheus,
    start_gateway,
    wait_for,
)
from tests.metrics.metrics_sync_gateway import DepartmentRepo, SyncingGateway
from tests.metrics.metrics_testlib import REPO

pytestmark = pytest.mark.e2e

DASHBOARD = REPO / "deploy" / "grafana" / "classgate.json"
ROUNDS = 6

POLICY = """\
classgate: 1
name: metrics-e2e
timezone: Asia/Ho_Chi_Minh
categories:
  games: {domains: [roblox.com, minecraft.net]}
  social: {domains: [facebook.com, tiktok.com]}
  adult: {domains: [adult-site.example]}
  education: {domains: [olm.vn]}
groups:
  students: {networks: [127.0.0.2/32]}
  teachers: {networks: [127.0.0.3/32]}
rules:
  - {name: harmful, action: block, categories: [adult], locked: true}
  - {name: no-games, action: block, groups: [students], categories: [games]}
default: allow
local_services: [127.0.0.50]   # the test origin (metrics_e2e.ORIGIN_IP)
safe_search: {google: strict, bing: strict, duckduckgo: strict, youtube: strict}
"""

# One round of traffic: (client address, Host, path, blocked?). 127.0.0.4 is in no group ("default").
ROUND = [
    ("127.0.0.2", "www.roblox.com", "/play", True),  # games, students: rule no-games (department tier)
    ("127.0.0.3", "www.roblox.com", "/play", False),  # games, teachers
    ("127.0.0.4", "m.facebook.com", "/feed", False),  # social, default
    ("127.0.0.2", "adult-site.example", "/x", True),  # adult: locked rule
    ("127.0.0.3", "olm.vn", "/lesson/1", False),  # education
    ("127.0.0.4", "example.org", "/page", False),  # uncategorized
    ("127.0.0.2", "www.google.com", "/search?q=cats", False),  # uncategorized, SafeSearch enforced
]
# Per round, what the counters must grow by (category, group, action) -> requests.
EXPECTED_REQUESTS = {
    ("games", "students", "block"): 1,
    ("games", "teachers", "allow"): 1,
    ("social", "default", "allow"): 1,
    ("adult", "students", "block"): 1,
    ("adult", "default", "block"): 1,  # the refused CONNECT, counted by the TLS gate
    ("education", "teachers", "allow"): 1,
    ("uncategorized", "default", "allow"): 1,
    ("uncategorized", "students", "allow"): 1,
}
EXPECTED_BLOCKED = {("games", "department"): 1, ("adult", "locked"): 2}


@dataclass
class Stack:
    prometheus: Prometheus
    gateway: Gateway
    policy: Path
    policy_version: str
    scraped_at: float


def wait_for_scrape(prom: Prometheus, expr: str, expected: float, timeout: float = 30) -> None:
    def check() -> bool:
        values = prom.vector(expr)
        return bool(values) and values[0][1] == expected

    wait_for(f"prometheus sees {expr} == {expected}", check, timeout)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("metrics-e2e")
    policy = work / "policy.yaml"
    policy.write_text(POLICY)
    origin = Origin()
    gateway = start_gateway(policy, work / "state", work / "classgate-run.log")
    repo = syncing = prom = None
    try:
        repo = DepartmentRepo(work, policy)
        syncing = SyncingGateway(repo, work / "sync-state")
        target = gateway.metrics_url.removeprefix("http://")
        clients = {src: Client(gateway.proxy_port, src) for src in ("127.0.0.2", "127.0.0.3", "127.0.0.4")}
        total = f'sum(classgate_requests_total{{instance="{target}"}})'
        per_round = sum(EXPECTED_REQUESTS.values())
        for n in range(1, ROUNDS + 1):
            for src, host, path, blocked in ROUND:
                status, body = clients[src].get(origin.port, host, path)
                assert (body == ORIGIN_BODY) is (not blocked), (host, src, status, body[:200])
            assert clients["127.0.0.4"].connect("adult-site.example:443") != 200
            if n == 1:
                # Prometheus starts after round 1: its first scrape sees every series at 1, and each
                # later round adds the same to each, so rate() ratios between series are exact.
                prom = Prometheus(work / "prometheus", [target, syncing.target])
                wait_for_scrape(prom, total, per_round)
            else:
                time.sleep(1.0)  # about one round per scrape
        for client in clients.values():
            client.close()
        wait_for_scrape(prom, total, ROUNDS * per_round)
        wait_for_scrape(prom, "count(classgate_sync_last_success_timestamp_seconds)", 1)
        version = prom.vector(f'classgate_policy_info{{instance="{target}"}}')[0][0]["version"]
        yield Stack(prom, gateway, policy, version, time.time())
    finally:
        for part in (prom, syncing, repo):
            if part is not None:
                part.stop()
        gateway.stop()
        origin.close()


def counter_values(prom: Prometheus, expr: str, labels: tuple[str, ...]) -> dict[tuple[str, ...], float]:
    return {tuple(m.get(k, "") for k in labels): v for m, v in prom.vector(expr)}


def test_request_counters_are_exact(stack: Stack) -> None:
    target = stack.gateway.metrics_url.removeprefix("http://")
    got = counter_values(
        stack.prometheus, f'classgate_requests_total{{instance="{target}"}}', ("category", "group", "action")
    )
    assert got == {k: v * ROUNDS for k, v in EXPECTED_REQUESTS.items()}
    blocked = counter_values(
        stack.prometheus, f'classgate_blocked_requests_total{{instance="{target}"}}', ("category", "tier")
    )
    assert blocked == {k: v * ROUNDS for k, v in EXPECTED_BLOCKED.items()}
    body = counter_values(
        stack.prometheus,
        f'classgate_response_bytes_total{{instance="{target}"}} > 0',
        ("category", "group", "action"),
    )
    # Every allowed request carried the origin's body back (blocked ones carry the block page).
    for key, n in EXPECTED_REQUESTS.items():
        if key[2] == "allow":
            assert body[key] == n * ROUNDS * len(ORIGIN_BODY)
    tls = counter_values(
        stack.prometheus, f'classgate_tls_connections_total{{instance="{target}"}}', ("mode",)
    )
    assert tls == {("intercepted",): 0, ("passthrough",): 0, ("refused",): ROUNDS}
    safe = counter_values(
        stack.prometheus, f'classgate_safesearch_rewrites_total{{instance="{target}"}}', ("engine",)
    )
    assert safe[("google",)] == ROUNDS and sum(safe.values()) == ROUNDS


def panel_queries() -> list[tuple[str, str]]:
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [(f"{p['title']} [{t['refId']}]", t["expr"]) for p in doc["panels"] for t in p.get("targets", [])]


def grafana_to_promql(expr: str) -> str:
    """What Grafana sends with school = instance = All, rate interval 4 scrape intervals (1 s here)."""
    for var, value in (("$__rate_interval", "1m"), ("$school", ".*"), ("$instance", ".*")):
        expr = expr.replace(var, value)
    assert "$" not in expr, f"an unknown dashboard variable in {expr}"
    return expr


@pytest.mark.parametrize(("panel", "expr"), panel_queries(), ids=[p for p, _ in panel_queries()])
def test_every_panel_query_parses_and_returns_data(stack: Stack, panel: str, expr: str) -> None:
    answer = stack.prometheus.query(grafana_to_promql(expr), at=stack.scraped_at)
    assert answer["status"] == "success", f"{panel}: {answer.get('error')}"
    assert answer["data"]["result"], f"{panel}: no data for {expr}"


def panel(title_start: str, ref: str = "A") -> str:
    for title, expr in panel_queries():
        if title.startswith(title_start) and title.endswith(f"[{ref}]"):
            return grafana_to_promql(expr)
    raise AssertionError(f"no panel {title_start!r} in the dashboard")


def test_panel_values(stack: Stack) -> None:
    prom, at = stack.prometheus, stack.scraped_at
    per_round = sum(EXPECTED_REQUESTS.values())
    blocked_per_round = sum(v for k, v in EXPECTED_REQUESTS.items() if k[2] == "block")

    def one(expr: str) -> float:
        values = prom.vector(expr, at)
        assert len(values) == 1, (expr, values)
        return values[0][1]

    def by(expr: str, label: str) -> dict[str, float]:
        return {m[label]: v for m, v in prom.vector(expr, at)}

    # Rates over the same window scale every series alike, so ratios between them are exact.
    assert one(panel("Tỉ lệ bị chặn")) == pytest.approx(blocked_per_round / per_round, rel=1e-6)
    categories = by(panel("Yêu cầu theo danh mục"), "category")
    assert set(categories) == {"games", "social", "adult", "education", "uncategorized"}
    assert categories["adult"] / categories["social"] == pytest.approx(2)
    groups = by(panel("Yêu cầu theo nhóm"), "group")
    expected_groups = {
        g: sum(v for k, v in EXPECTED_REQUESTS.items() if k[1] == g) for _, g, _ in EXPECTED_REQUESTS
    }
    assert set(groups) == set(expected_groups)
    for group, n in expected_groups.items():
        assert groups[group] / groups["teachers"] == pytest.approx(n / expected_groups["teachers"])
    assert set(by(panel("Bị chặn theo cấp quy tắc"), "tier")) == {"locked", "department"}
    assert set(by(panel("Kết nối HTTPS"), "mode")) == {"intercepted", "passthrough", "refused"}
    assert by(panel("SafeSearch"), "engine")["google"] > 0
    top = by(panel("Danh mục nhiều nhất"), "category")
    assert top["adult"] / top["social"] == pytest.approx(2)
    # increase() over 24h extrapolates a little past the last scrape; the count is 2 x ROUNDS.
    assert 2 * ROUNDS * 0.9 <= top["adult"] <= 2 * ROUNDS * 1.4
    assert one(panel("Cổng lọc hoạt động")) == 2
    assert 0 < one(panel("Thời gian quyết định", "B")) <= 0.25
    versions = by(panel("Phiên bản chính sách /"), "version")
    assert stack.policy_version in versions
    assert 0 <= one(panel("Chính sách nạp cách đây")) < 300
    assert 0 <= one(panel("Đồng bộ thành công cách đây")) < 60
    assert one(panel("Chữ ký hết hạn sau")) > 3600  # the Department's fresh timestamp metadata
    assert one(panel("Số lần đồng bộ")) >= 1
    assert set(by(panel("Gói chính sách"), "version")) == {"2"}  # `department publish` made bundle 2


def test_reload_counters_follow_policy_edits(stack: Stack) -> None:
    """Editing the policy file reloads it: a broken edit is rejected (old policy kept), a fix succeeds."""
    prom = stack.prometheus
    target = stack.gateway.metrics_url.removeprefix("http://")
    rejected = f'classgate_policy_reloads_total{{instance="{target}", result="rejected"}}'
    succeeded = f'classgate_policy_reloads_total{{instance="{target}", result="succeeded"}}'
    before = prom.vector(succeeded)[0][1]
    stack.policy.write_text(POLICY.replace("default: allow", "default: maybe"))
    wait_for_scrape(prom, rejected, 1, timeout=60)
    assert (
        prom.vector(f'classgate_policy_info{{instance="{target}"}}')[0][0]["version"] == stack.policy_version
    )
    stack.policy.write_text(POLICY.replace("olm.vn]", "olm.vn, hocmai.vn]"))
    wait_for_scrape(prom, succeeded, before + 1, timeout=60)
    assert (
        prom.vector(f'classgate_policy_info{{instance="{target}"}}')[0][0]["version"] != stack.policy_version
    )
    answer = prom.query(panel("Nạp chính sách"))
    assert {s["metric"]["result"] for s in answer["data"]["result"]} == {"succeeded", "rejected"}
