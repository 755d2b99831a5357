"""The metrics HTTP endpoint, served for real on an ephemeral loopback port."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from classgate.metrics import Metrics, MetricsServer, server
from classgate.proxy.metric_labels import gateway_metrics


@pytest.fixture
def served(fed_metrics: Metrics) -> Iterator[MetricsServer]:
    s = server.start(fed_metrics, "127.0.0.1", 0)
    yield s
    s.close()


def get(url: str, accept: str | None = None) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


@pytest.mark.parametrize(
    ("path", "accept", "status", "content_type", "contains"),
    [
        ("/metrics", None, 200, "text/plain; version=0.0.4; charset=utf-8", b"classgate_requests_total{"),
        (
            "/metrics",
            "application/openmetrics-text; version=1.0.0",
            200,
            "application/openmetrics-text",
            b"# EOF",
        ),
        ("/stats.json", None, 200, "application/json", b'"roblox.com"'),
        ("/stats.json?n=1", None, 200, "application/json", b'"min_clients": 3'),
        ("/stats.json?n=0", None, 400, "text/plain; charset=utf-8", b"n must be"),
        ("/stats.json?n=abc", None, 400, "text/plain; charset=utf-8", b"n must be"),
        ("/", None, 200, "text/plain; charset=utf-8", b"/metrics"),
        ("/etc/passwd", None, 404, "text/plain; charset=utf-8", b"not found"),
    ],
)
def test_endpoints(
    served: MetricsServer, path: str, accept: str | None, status: int, content_type: str, contains: bytes
) -> None:
    got_status, got_type, body = get(served.url + path, accept)
    assert got_status == status
    assert got_type.startswith(content_type)
    assert contains in body


def test_stats_json_document(served: MetricsServer) -> None:
    _, _, body = get(served.url + "/stats.json?n=5")
    doc = json.loads(body)
    assert doc["categories"]["games"]["top"] == [
        {"domain": "roblox.com", "requests": 3, "requests_at_least": 3}
    ]
    assert doc["capacity_per_category"] == 128


def test_nothing_is_logged_about_requests(served: MetricsServer, capfd: pytest.CaptureFixture[str]) -> None:
    get(served.url + "/metrics")
    get(served.url + "/nope")
    out, err = capfd.readouterr()
    assert "127.0.0.1" not in out + err and "GET" not in out + err


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        s = server.start(gateway_metrics(process_metrics=False), "::1", 0)
    except OSError as e:
        pytest.skip(f"::1 not available: {e}")
    try:
        assert s.url.startswith("http://[::1]:")
        assert get(s.url + "/metrics")[0] == 200
    finally:
        s.close()


def test_port_in_use_is_an_oserror(served: MetricsServer) -> None:
    with pytest.raises(OSError):
        server.start(gateway_metrics(process_metrics=False), "127.0.0.1", served.port)


def test_close_is_quick_and_frees_the_port(fed_metrics: Metrics) -> None:
    s = server.start(fed_metrics, "127.0.0.1", 0)
    port = s.port
    assert get(s.url + "/metrics")[0] == 200
    started = time.monotonic()
    s.close()
    assert time.monotonic() - started < 1.0
    assert not s._thread.is_alive()
    again = server.start(fed_metrics, "127.0.0.1", port)
    again.close()
