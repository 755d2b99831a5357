"""Real processes for the end-to-end metrics tests: a local origin, `classgate run`, a Prometheus.

Everything listens on 127.0.0.0/8 on ephemeral ports. Traffic reaches the origin through the proxy as
absolute-form requests for http://127.0.0.50:<origin>/... carrying the Host header of the site being
"visited": the filter decides on the Host header (mitmproxy's pretty_url) and the proxy connects to
the IP in the URL, so categorised hosts need no DNS and no test-only addon.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.metrics.metrics_testlib import PROMETHEUS, need_tool

ORIGIN_BODY = b"origin-ok " * 100  # 1,000 bytes: blocked answers are the block page, not this


# The origin stands for the Internet: not on 127.0.0.1, which the gateway refuses as its own address; the
# test policies open this one (`local_services`).
ORIGIN_IP = "127.0.0.50"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for(
    what: str,
    check: Callable[[], Any],
    timeout: float,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: process exited with {proc.returncode}\n{_tail(log)}")
        try:
            result = check()
        except (OSError, ValueError, http.client.HTTPException):
            result = None
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"{what}: not ready after {timeout}s\n{_tail(log)}")


def _tail(log: Path | None) -> str:
    return log.read_text(errors="replace")[-4000:] if log and log.exists() else ""



def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 15 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

class Origin:
    """The web server every proxied request ends at (HTTP/1.1, keep-alive)."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Buffered: headers and body leave in one segment. Unbuffered, the body waits for the
            # proxy's delayed ACK of the headers (Nagle), 40 ms per request.
            wbufsize = -1

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(ORIGIN_BODY)))
                self.end_headers()
                self.wfile.write(ORIGIN_BODY)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer((ORIGIN_IP, 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Client:
    """A device at `source` (a 127.0.0.x address) using the proxy, on one keep-alive connection."""

    def __init__(self, proxy_port: int, source: str):
        self.proxy_port, self.source = proxy_port, source
        self.conn: http.client.HTTPConnection | None = None

    def get(self, origin_port: int, host: str, path: str = "/") -> tuple[int, bytes]:
        for attempt in (1, 2):  # the proxy may close a kept-alive connection after a block page
            if self.conn is None:
                self.conn = http.client.HTTPConnection(
                    "127.0.0.1", self.proxy_port, source_address=(self.source, 0), timeout=20
                )
            try:
                self.conn.request("GET", f"http://{ORIGIN_IP}:{origin_port}{path}", headers={"Host": host})
                response = self.conn.getresponse()
                body = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self.close()
                return response.status, body
            except (http.client.HTTPException, ConnectionError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def connect(self, authority: str) -> int:
        """An HTTPS CONNECT; returns the proxy's status (the TLS gate may refuse it)."""
        conn = http.client.HTTPConnection(
            "127.0.0.1", self.proxy_port, source_address=(self.source, 0), timeout=20
        )
        try:
            conn.request("CONNECT", authority)
            return conn.getresponse().status
        finally:
            conn.close()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@dataclass
class Gateway:
    proc: subprocess.Popen[bytes]
    proxy_port: int
    metrics_url: str
    log: Path

    def scrape(self) -> str:
        with urllib.request.urlopen(self.metrics_url + "/metrics", timeout=10) as r:
            return r.read().decode()

    def stats(self) -> str:
        with urllib.request.urlopen(self.metrics_url + "/stats.json?n=100", timeout=10) as r:
            return r.read().decode()

    def stop(self) -> str:
        stop_process(self.proc)
        return self.log.read_text(errors="replace")


def classgate_command() -> list[str]:
    script = Path(sys.executable).with_name("classgate")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from agent.cli import main; main()"]


def start_gateway(policy: Path, state_dir: Path, log: Path, extra: tuple[str, ...] = ()) -> Gateway:
    """`classgate run` as an admin starts it, at default log level, on ephemeral loopback ports."""
    proxy_port, metrics_port = free_port(), free_port()
    cmd = [
        *classgate_command(),
        "run",
        "--policy",
        str(policy),
        "--listen",
        f"127.0.0.1:{proxy_port}",
        "--metrics",
        f"127.0.0.1:{metrics_port}",
        "--state-dir",
        str(state_dir),
        *extra,
    ]
    out = log.open("wb")
    proc = subprocess.Popen(
        cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    gw = Gateway(proc, proxy_port, f"http://127.0.0.1:{metrics_port}", log)
    try:
        wait_for("classgate run /metrics", lambda: "classgate_build_info" in gw.scrape(), 60, proc, log)
        wait_for(
            "classgate run proxy port",
            lambda: socket.create_connection(("127.0.0.1", proxy_port), 1).close() or True,
            30,
            proc,
            log,
        )
    except BaseException:
        gw.stop()
        raise
    return gw


class Prometheus:
    """/usr/bin/prometheus on a free loopback port with a temporary TSDB: by default scraping `targets`
    every second; or with a given `config` (a dict) and extra command-line `args`."""

    def __init__(
        self,
        workdir: Path,
        targets: list[str] | None = None,
        job: str = "classgate",
        config: dict[str, Any] | None = None,
        args: tuple[str, ...] = (),
    ):
        binary = need_tool(PROMETHEUS)
        workdir.mkdir(parents=True, exist_ok=True)
        if config is None:
            config = {
                "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [{"job_name": job, "static_configs": [{"targets": targets or []}]}],
            }
        config_file = workdir / "prometheus.yml"
        config_file.write_text(json.dumps(config))  # JSON is YAML
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = workdir / "prometheus.log"
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
                *args,
            ],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(
                "prometheus ready",
                lambda: urllib.request.urlopen(self.url + "/-/ready", timeout=2).status == 200,
                60,
                self.proc,
                self.log,
            )
        except BaseException:
            self.stop()
            raise

    def query(self, expr: str, at: float | None = None) -> dict[str, Any]:
        """The raw API answer (status, data / errorType, error) for an instant query."""
        params = {"query": expr, **({"time": f"{at:.3f}"} if at else {})}
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            return json.loads(e.read())

    def vector(self, expr: str, at: float | None = None) -> list[tuple[dict[str, str], float]]:
        answer = self.query(expr, at)
        assert answer["status"] == "success", f"{expr}: {answer}"
        data = answer["data"]
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(s["metric"], float(s["value"][1])) for s in data["result"]]

    def stop(self) -> None:
        stop_process(self.proc)
