"""`classgate stats`: every exit path, against a real metrics server."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from threading import Thread

import pytest
from click.testing import CliRunner

from classgate.agent.commands.stats import stats
from classgate.metrics import Metrics, MetricsServer, server
from classgate.proxy.metric_labels import gateway_metrics


@pytest.fixture
def served(fed_metrics: Metrics) -> Iterator[MetricsServer]:
    s = server.start(fed_metrics, "127.0.0.1", 0)
    yield s
    s.close()


@pytest.fixture
def not_classgate() -> Iterator[str]:
    """Some other web server: answers HTML on every path."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<html>hello</html>")

        def log_message(self, *args: object) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def address(server: MetricsServer) -> str:
    return f"{server.host}:{server.port}"


def test_text_report(served: MetricsServer) -> None:
    result = CliRunner().invoke(stats, ["--metrics", address(served)])
    assert result.exit_code == 0, result.output
    assert "games: 3 requests" in result.output
    assert "roblox.com" in result.output


def test_json_report(served: MetricsServer) -> None:
    result = CliRunner().invoke(stats, ["--metrics", address(served), "--json", "--top", "1"])
    assert result.exit_code == 0
    assert json.loads(result.output)["categories"]["games"]["top"][0]["domain"] == "roblox.com"


@pytest.mark.parametrize(
    ("url", "exit_code", "message"),
    [
        ("http://127.0.0.1:{free}", 1, "cannot reach"),
        ("ftp://127.0.0.1/", 1, "not an http"),
        ("{other}", 1, "did not return JSON"),
        ("{served}/nothing-here#", 1, "answered 404"),
    ],
)
def test_errors_are_sentences_not_tracebacks(
    served: MetricsServer, not_classgate: str, url: str, exit_code: int, message: str
) -> None:
    url = url.format(free=free_port(), other=not_classgate, served=served.url)
    result = CliRunner().invoke(stats, ["--url", url])
    assert result.exit_code == exit_code
    assert message in result.output
    assert "Traceback" not in result.output


def test_the_old_url_spelling_still_works_with_a_warning(served: MetricsServer) -> None:
    result = CliRunner().invoke(stats, ["--url", served.url])
    assert result.exit_code == 0
    assert "games: 3 requests" in result.stdout
    assert "--url is now --metrics" in result.stderr


@pytest.mark.parametrize("value", ["http://127.0.0.1:9741", "127.0.0.1", "[::1", "host:port"])
def test_a_metrics_address_that_is_not_host_port_is_a_usage_error(value: str) -> None:
    result = CliRunner().invoke(stats, ["--metrics", value])
    assert result.exit_code == 2 and "Traceback" not in result.output


@pytest.mark.parametrize("top", ["0", "101", "many"])
def test_bad_top_is_a_usage_error(top: str) -> None:
    result = CliRunner().invoke(stats, ["--top", top])
    assert result.exit_code == 2


def test_empty_gateway() -> None:
    s = server.start(gateway_metrics(process_metrics=False), "127.0.0.1", 0)
    try:
        result = CliRunner().invoke(stats, ["--metrics", address(s)])
    finally:
        s.close()
    assert result.exit_code == 0
    assert "No requests counted yet." in result.output


@pytest.mark.parametrize(
    ("category", "lines"),
    [
        ({"requests": 1, "max_error": 0, "top": [], "hidden_domains": 1},
         ["games: 1 request", "(1 site seen by too few devices is not shown)"]),
        ({"requests": 2500, "max_error": 19, "top": [], "hidden_domains": 3},
         ["games: 2,500 requests (each count below may be over by up to 19)", "(3 sites seen by too few"]),
    ],
)
def test_plain_phrasing(category, lines) -> None:
    from classgate.agent.commands.stats import format_stats

    text = format_stats({"since": 1_790_000_000, "min_clients": 3, "timezone": "Asia/Ho_Chi_Minh",
                         "categories": {"games": category}})
    for line in lines:
        assert line in text
    assert "over by up to 0" not in text and "1 sites" not in text
    assert "(Asia/Ho_Chi_Minh)" in text and "UTC" not in text
