"""`classgate run --workers 2`, for real: two proxy processes on one port (SO_REUSEPORT), one metrics endpoint
summing them, a worker killed with SIGKILL replaced while requests keep being answered, the DNS listener once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.agent.test_sync_e2e import wait_for
from tests.proxy.proxytest_support import (  # noqa: F401 - origin, origin_pki: fixtures
    CLASSGATE,
    GUEST,
    STUDENT,
    TEACHER,
    TEST_POLICY,
    ProxyProcess,
    curl,
    free_port,
    origin,
    origin_pki,
)

pytestmark = pytest.mark.e2e


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the series `name` (exact name) whose labels include `labels`."""
    want = [f'{k}="{v}"' for k, v in labels.items()]
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name)] in " {" and all(w in line for w in want):
            total += float(line.rsplit(" ", 1)[1])
    return total


def reports(state: Path) -> dict[int, dict]:
    out = {}
    for f in sorted((state / "workers").glob("worker-*.json")):
        out[int(f.stem.split("-")[1])] = json.loads(f.read_text())
    return out


@pytest.fixture
def gateway(tmp_path, origin, origin_pki):  # noqa: F811 - pytest fixtures by name
    policy = tmp_path / "policy.yaml"
    policy.write_text(TEST_POLICY, encoding="utf-8")
    dns_port = free_port()
    proxy = ProxyProcess(policy, tmp_path / "state", origin, origin_pki.ca,
                         extra=["--workers", "2", "--dns", f"127.0.0.1:{dns_port}", "--dns-upstream", "127.0.0.1:9"])
    try:
        wait_for(lambda: len(reports(proxy.state_dir)) == 2 and "workers:" in proxy.output(), 60, "both workers")
        proxy.dns_port = dns_port  # type: ignore[attr-defined]
        yield proxy
    finally:
        code = proxy.stop()
        assert code == 0, proxy.output()


def test_connections_spread_over_both_workers_and_one_endpoint_sums_them(gateway):
    sources = (TEACHER, STUDENT, GUEST)
    for i in range(30):  # one new connection each: the kernel hashes each one to a worker
        r = curl(gateway.url, "http://allowed.test/", source=sources[i % 3])
        assert r.status == 200, r.stderr
    per_worker = [value(scrape(f"http://127.0.0.1:{doc['metrics']}/metrics"), "classgate_requests_total")
                  for doc in reports(gateway.state_dir).values()]
    assert len(per_worker) == 2 and all(n > 0 for n in per_worker), per_worker  # each worker got connections
    merged = scrape(f"http://127.0.0.1:{gateway.metrics_port}/metrics")
    assert value(merged, "classgate_requests_total") == sum(per_worker) == 30
    assert value(merged, "classgate_workers_up") == 2
    # Top sites: three devices asked for allowed.test, on whichever worker; merged, it is shown.
    stats = json.loads(scrape(f"http://127.0.0.1:{gateway.metrics_port}/stats.json"))
    shown = {row["domain"]: row["requests"] for c in stats["categories"].values() for row in c["top"]}
    assert shown.get("allowed.test") == 30, stats


def _has_exited(pid: int) -> bool:
    """True once the process holds no sockets: gone, or a zombie waiting for its supervisor."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def test_a_killed_worker_is_replaced_while_requests_keep_being_answered(gateway):
    before = reports(gateway.state_dir)
    victim = before[1]["pid"]
    os.kill(victim, signal.SIGKILL)
    # SIGKILL is delivered asynchronously: until the victim has exited, its listening socket still takes
    # its share of new connections, and those are the "open connections" a dead worker loses.
    wait_for(lambda: _has_exited(victim), 10, "the killed worker to exit")
    answered = [curl(gateway.url, "http://allowed.test/", source=TEACHER).status for _ in range(20)]
    assert answered == [200] * 20
    after = wait_for(lambda: (r := reports(gateway.state_dir)).get(1, {}).get("pid") not in (None, victim) and r,
                     60, "worker 1 to come back")
    assert after[0]["pid"] == before[0]["pid"]  # nobody else was restarted

    def both_up() -> str | None:
        text = scrape(f"http://127.0.0.1:{gateway.metrics_port}/metrics")
        return text if value(text, "classgate_workers_up") == 2 else None

    merged = wait_for(both_up, 30, "two workers up")
    assert value(merged, "classgate_worker_restarts_total") == 1
    assert "worker 1 (pid" in gateway.output()


def _udp_inodes(port: int) -> set[str]:
    inodes = set()
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port:
            inodes.add(fields[9])
    return inodes


def _holds_socket(pid: int, inodes: set[str]) -> bool:
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


def test_the_dns_listener_runs_in_exactly_one_worker(gateway):
    inodes = _udp_inodes(gateway.dns_port)
    assert inodes, "nothing listens on the DNS port"
    holders = [i for i, doc in reports(gateway.state_dir).items() if _holds_socket(doc["pid"], inodes)]
    assert holders == [0]
    assert not _holds_socket(gateway.proc.pid, inodes)  # the supervisor closed its check socket


def test_workers_stop_when_their_supervisor_is_killed(tmp_path, origin, origin_pki):  # noqa: F811
    policy = tmp_path / "policy.yaml"
    policy.write_text(TEST_POLICY, encoding="utf-8")
    proxy = ProxyProcess(policy, tmp_path / "state", origin, origin_pki.ca, extra=["--workers", "2"])
    pids: list[int] = []
    try:
        wait_for(lambda: len(reports(proxy.state_dir)) == 2, 60, "both workers")
        pids = [doc["pid"] for doc in reports(proxy.state_dir).values()]
        os.kill(proxy.proc.pid, signal.SIGKILL)  # no chance to stop them: they must notice themselves
        proxy.proc.wait(10)

        def running(pid: int) -> bool:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                return False
            return state != "Z"

        wait_for(lambda: not [p for p in pids if running(p)], 20, "the orphaned workers to stop")
    finally:
        proxy.stop()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.mark.parametrize("workers", ["2", "1"])
def test_a_second_gateway_on_the_same_port_is_refused(gateway, tmp_path, workers):
    """SO_REUSEPORT would let a second multi-worker gateway share the port silently: `run` refuses it."""
    policy = tmp_path / "second.yaml"
    policy.write_text(TEST_POLICY.replace("default: allow", "default: block"), encoding="utf-8")
    r = subprocess.run([str(CLASSGATE), "run", "--policy", str(policy), "--listen", f"127.0.0.1:{gateway.port}",
                        "--metrics", "off", "--state-dir", str(tmp_path / "second-state"), "--workers", workers],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"another classgate gateway already serves port {gateway.port}" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "second-state").exists()  # refused before it compiled or wrote anything
    assert curl(gateway.url, "http://allowed.test/", source=TEACHER).status == 200  # the first one serves on
