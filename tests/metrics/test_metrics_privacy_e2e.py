"""Privacy, end to end: after traffic from several devices to 10,000 distinct hosts through a real
`classgate run`, no scrape, no default-level log line and no /stats.json output contains a client
address or a URL, and the number of series has not grown with the hosts.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from prometheus_client.parser import text_string_to_metric_families

from classgate.metrics.cardinality import max_series
from classgate.proxy.metric_labels import METRIC_LABELS
from tests.metrics.metrics_e2e import ORIGIN_BODY, Client, Gateway, Origin, start_gateway

pytestmark = pytest.mark.e2e

CLIENTS = ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")  # never 127.0.0.1: the servers' own address
HOSTS = 10_000
POLICY = """\
classgate: 1
name: privacy-e2e
categories:
  games: {domains: [roblox.com]}
  adult: {domains: [adult-site.example]}
groups:
  students: {networks: [127.0.0.2/31]}
rules:
  - {name: harmful, action: block, categories: [adult], locked: true}
default: allow
local_services: [127.0.0.50]   # the test origin (metrics_e2e.ORIGIN_IP)
"""


def visit(i: int) -> tuple[str, str, bool]:
    """The i-th of the distinct hosts: mostly uncategorized sites, some games, some blocked."""
    if i % 10 == 0:
        return f"s{i}.roblox.com", f"/game/{i}/secret-{i:05d}?student=hs{i:05d}", False
    if i % 10 == 1:
        return f"p{i}.adult-site.example", f"/secret-{i:05d}?student=hs{i:05d}", True
    return f"www.site{i:05d}.example", f"/secret-{i:05d}?student=hs{i:05d}", False


@dataclass
class Visited:
    gateway: Gateway
    series_before: int
    scrape: str
    stats: str
    log: str


def count_series(exposition: str) -> int:
    return sum(len(f.samples) for f in text_string_to_metric_families(exposition))


@pytest.fixture(scope="module")
def visited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Visited]:
    work = tmp_path_factory.mktemp("metrics-privacy")
    policy = work / "policy.yaml"
    policy.write_text(POLICY)
    origin = Origin()
    gateway = start_gateway(policy, work / "state", work / "classgate-run.log")
    try:
        # A few requests from every device first, so every series the traffic can create exists. The
        # uncategorized one is a host no device visits later: every device asked for it, so the gateway may
        # rightly show it, while each www.siteNNNNN.example stays one device's (a warm-up that used one of
        # them let it be shown whenever the kernel gave the warm-up and the visits to different workers).
        warm_up = (visit(0)[0], visit(1)[0], "www.every-device.example")
        for src in CLIENTS:
            client = Client(gateway.proxy_port, src)
            for host in warm_up:
                client.get(origin.port, host, "/")
            client.close()
        series_before = count_series(gateway.scrape())
        failures: list[str] = []

        def device(k: int) -> None:
            client = Client(gateway.proxy_port, CLIENTS[k])
            try:
                for i in range(k, HOSTS, len(CLIENTS)):  # bounded: each device visits HOSTS / 4 hosts
                    host, path, blocked = visit(i)
                    _, body = client.get(origin.port, host, path)
                    if (body == ORIGIN_BODY) is blocked:
                        failures.append(f"{host}: blocked={blocked} but got {body[:80]!r}")
            except Exception as e:  # noqa: BLE001 (any failure of a device thread is reported below)
                failures.append(repr(e))
            finally:
                client.close()

        threads = [threading.Thread(target=device, args=(k,)) for k in range(len(CLIENTS))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert not failures, failures[:5]
        scrape, stats = gateway.scrape(), gateway.stats()
        log = gateway.stop()
        yield Visited(gateway, series_before, scrape, stats, log)
    finally:
        gateway.stop()
        origin.close()


ADDRESS = re.compile("|".join(re.escape(c) for c in CLIENTS))
URL_PARTS = re.compile(r"secret-\d{5}|student=|hs\d{5}|/game/\d")


@pytest.mark.parametrize("output", ["scrape", "stats", "log"])
def test_no_client_address_or_url(visited: Visited, output: str) -> None:
    text = getattr(visited, output)
    assert not ADDRESS.search(text), f"a client address in the {output}: ...{_around(text, ADDRESS)}..."
    assert not URL_PARTS.search(text), f"a URL in the {output}: ...{_around(text, URL_PARTS)}..."


def test_no_visited_host_in_the_scrape_or_log(visited: Visited) -> None:
    """Hosts are not labels and not in default log lines (only registrable domains reach /stats.json)."""
    hosts = re.compile(r"www\.site\d{5}\.example|s\d+\.roblox\.com|p\d+\.adult-site\.example")
    for name in ("scrape", "log"):
        text = getattr(visited, name)
        assert not hosts.search(text), f"a host in the {name}: ...{_around(text, hosts)}..."


def test_series_stay_bounded(visited: Visited) -> None:
    after = count_series(visited.scrape)
    assert after == visited.series_before
    bound = sum(max_series(METRIC_LABELS, categories=2, groups=1).values())
    assert after <= bound


def test_top_sites_stay_bounded_and_thresholded(visited: Visited) -> None:
    doc = json.loads(visited.stats)
    capacity = doc["capacity_per_category"]
    assert {"games", "uncategorized"} <= set(doc["categories"])
    for name, cat in doc["categories"].items():
        assert len(cat["top"]) + cat["hidden_domains"] <= capacity, name
    # Each www.siteNNNNN.example was visited by one device only: none may be shown.
    shown = [site["domain"] for cat in doc["categories"].values() for site in cat["top"]]
    assert not [d for d in shown if d.startswith("site")]
    # roblox.com: once per device in the warm-up, then every tenth host: shown, with an exact count.
    assert doc["categories"]["games"]["top"][0]["domain"] == "roblox.com"
    assert doc["categories"]["games"]["top"][0]["requests"] == HOSTS // 10 + len(CLIENTS)


def _around(text: str, pattern: re.Pattern[str]) -> str:
    m = pattern.search(text)
    return text[max(0, m.start() - 120) : m.end() + 120] if m else ""
