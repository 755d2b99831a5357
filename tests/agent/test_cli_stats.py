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


def test_text_report(served: MetricsServer) -> None:
    result = CliRunner().invoke(stats, ["--url", served.url])
    assert result.exit_code == 0, result.output
    assert "games: 3 requests" in result.output
    assert "roblox.com" in result.output


def test_json_report(served: MetricsServer) -> None:
    result = CliRunner().invoke(stats, ["--url", served.url, "--json", "--top", "1"])
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


@pytest.mark.parametrize("top", ["0", "101", "many"])
def test_bad_top_is_a_usage_error(top: str) -> None:
    result = CliRunner().invoke(stats, ["--top", top])
    assert result.exit_code == 2


def test_empty_gateway() -> None:
    s = server.start(gateway_metrics(process_metrics=False), "127.0.0.1", 0)
    try:
        result = CliRunner().invoke(stats, ["--url", s.url])
    finally:
        s.close()
    assert result.exit_code == 0
    assert "No requests counted yet." in result.output
