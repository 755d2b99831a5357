"""End to end: `department init` -> `publish` -> a running `classgate run --sync-from` picks it up.

Real processes: `classgate department serve` (the repository over HTTP), `classgate run` (mitmproxy with
the SyncAddon), a local origin server, and a client that keeps requesting through the proxy while the
Department publishes a bundle that blocks that origin. Every response must be the origin's page or the
block page: no request fails during the switch.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tests.agent.sync_helpers import LISTS_V1, POLICY_V1, cli, write_policy

CLASSGATE = str(Path(sys.executable).parent / "classgate")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Origin(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello from the origin"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def metric(port: int, name: str) -> float | None:
    try:
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except requests.RequestException:
        return None
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_published_bundle_reaches_a_running_gateway_without_failed_requests(tmp_path):
    if not shutil.which(CLASSGATE):
        pytest.skip("classgate is not installed in the venv (pip install -e .)")
    repo = tmp_path / "department"
    cli("department", "init", str(repo))
    cli("department", "publish", str(repo), "--policy", str(write_policy(tmp_path / "p1", POLICY_V1, LISTS_V1)))

    origin = ThreadingHTTPServer(("127.0.0.50", 0), Origin)
    origin.daemon_threads = True
    threading.Thread(target=origin.serve_forever, args=(0.05,), daemon=True).start()
    target = f"http://127.0.0.50:{origin.server_address[1]}/page"

    procs: list[subprocess.Popen] = []
    try:
        serve = subprocess.Popen([CLASSGATE, "department", "serve", str(repo), "--listen", "127.0.0.1:0"],
                                 stderr=subprocess.PIPE, text=True)
        procs.append(serve)
        url = re.search(r"on (http://\S+/)", serve.stderr.readline()).group(1)
        served: list[str] = []  # the Department server's log, kept for a failure's message
        threading.Thread(target=lambda: served.extend(serve.stderr), daemon=True).start()  # keep the pipe drained
        proxy_port, metrics_port = free_port(), free_port()
        env = {**os.environ, "NO_PROXY": "", "no_proxy": ""}
        gateway = subprocess.Popen(
            [CLASSGATE, "run", "--listen", f"127.0.0.1:{proxy_port}", "--metrics", f"127.0.0.1:{metrics_port}",
             "--state-dir", str(tmp_path / "state"), "--sync-from", url,
             "--trust", str(repo / "repository" / "metadata" / "1.root.json"), "--sync-interval", "0.3-0.6"],
            env=env, stdout=(tmp_path / "gateway.out").open("w"), stderr=(tmp_path / "gateway.log").open("w"))
        procs.append(gateway)
        try:
            wait_for(lambda: metric(metrics_port, "classgate_sync_bundle_version") == 2.0, 60, "bundle 2 active")
        except AssertionError as e:  # once seen in CI, not reproduced: say what the gateway and the server said
            gateway_log = (tmp_path / "gateway.log").read_text(errors="replace")[-4000:]
            raise AssertionError(f"{e}\ngateway log:\n{gateway_log}\nDepartment server:\n{''.join(served[-40:])}"
                                 f"\nmetric: {metric(metrics_port, 'classgate_sync_bundle_version')}") from None

        proxies = {"http": f"http://127.0.0.1:{proxy_port}"}
        first = requests.get(target, proxies=proxies, timeout=10)
        assert first.status_code == 200 and first.text == "hello from the origin"
        blocked = requests.get("http://casino-one.example/", proxies=proxies, timeout=10)
        assert blocked.status_code == 403

        outcomes: list[str] = []
        stop = threading.Event()

        def client() -> None:
            with requests.Session() as session:
                while not stop.is_set() and len(outcomes) < 5000:
                    try:
                        r = session.get(target, proxies=proxies, timeout=10)
                        outcomes.append("origin" if r.status_code == 200 and r.text == "hello from the origin"
                                        else "blocked" if r.status_code == 403 else f"HTTP {r.status_code}")
                    except requests.RequestException as e:
                        outcomes.append(f"error {type(e).__name__}")

        thread = threading.Thread(target=client)
        thread.start()
        time.sleep(0.5)
        # The Department adds the origin's host to the gambling list and publishes once.
        lists = {**LISTS_V1, "lists/ut1/gambling/domains": "casino-one.example\n127.0.0.50\n"}
        cli("department", "publish", str(repo), "--policy", str(write_policy(tmp_path / "p2", POLICY_V1, lists)))
        published = time.monotonic()
        wait_for(lambda: metric(metrics_port, "classgate_sync_bundle_version") == 3.0, 30, "bundle 3 active")
        took = time.monotonic() - published
        wait_for(lambda: outcomes[-3:] == ["blocked"] * 3, 10, "the origin to be blocked")
        stop.set()
        thread.join(15)

        assert set(outcomes) <= {"origin", "blocked"}, sorted(set(outcomes))
        switch = outcomes.index("blocked")
        assert "origin" not in outcomes[switch:], "a request went back to the old policy after the switch"
        assert outcomes.count("origin") > 0 and len(outcomes) > 20
        print(f"switch after {took:.2f} s; {len(outcomes)} requests, none failed")

        status = subprocess.run([CLASSGATE, "status", "--state-dir", str(tmp_path / "state")],
                                capture_output=True, text=True, check=False)
        assert status.returncode == 0 and "active bundle:     3" in status.stdout, status.stdout
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        origin.shutdown()
        origin.server_close()
