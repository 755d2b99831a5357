"""The proxy process over time: hot reload under load, invalid reloads, SIGHUP, SIGTERM, mitmdump -s."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import threading
import time
import urllib.request

import pytest

from tests.proxy.proxytest_support import (
    HERE,
    REPO,
    STUDENT,
    TEACHER,
    TEST_POLICY,
    VENV_BIN,
    ProxyProcess,
    curl,
    free_port,
    wait_port,
)

pytestmark = pytest.mark.e2e

THREADS, REQUESTS, RELOADS = 4, 300, 3


def metric(proxy: ProxyProcess, name: str, **labels: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{proxy.metrics_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    want = [f'{k}="{v}"' for k, v in labels.items()]
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {") and all(w in line for w in want):
            total += float(line.rsplit(" ", 1)[1])
    return total


def wait_for(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def reloading_proxy(tmp_path, origin, origin_pki):
    policy = tmp_path / "policy.yaml"
    policy.write_text(TEST_POLICY, encoding="utf-8")
    p = ProxyProcess(policy, tmp_path / "state", origin, origin_pki.ca,
                     extra=["--set", "classgate_reload_interval_ms=200"])
    p.policy = policy
    yield p
    p.stop()


def _bump(policy_path, n: int) -> None:
    """A new valid policy: one more blocked test domain (and new mtime/size)."""
    text = TEST_POLICY.replace("gambling: {domains: [blocked.test]}",
                               f"gambling: {{domains: [blocked.test, new{n}.test]}}")
    tmp = policy_path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, policy_path)  # atomic, as an editor or the sync would do


def test_no_request_fails_during_reloads(reloading_proxy):
    proxy = reloading_proxy
    failures: list[str] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def client(worker: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10, source_address=(STUDENT, 0))
        for i in range(REQUESTS):
            host, expected = ("allowed.test", {200}) if i % 2 else ("blocked.test", {403})
            if i % 7 == 0:
                host, expected = "new1.test", {200, 403}  # becomes blocked by the first reload
            try:
                conn.request("GET", f"http://{host}/w{worker}/{i}", headers={"Host": host})
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except Exception as e:  # noqa: BLE001
                with lock:
                    failures.append(f"{host} #{i}: {type(e).__name__}: {e}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10, source_address=(STUDENT, 0))
                continue
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if status not in expected:
                    failures.append(f"{host} #{i}: HTTP {status}")
        conn.close()

    reloads_before = metric(proxy, "classgate_policy_reloads_total", result="succeeded")
    threads = [threading.Thread(target=client, args=(w,)) for w in range(THREADS)]
    for t in threads:
        t.start()
    for n in range(1, RELOADS + 1):
        time.sleep(0.3)
        if n == 2:
            proxy.signal(signal.SIGHUP)  # one reload by signal, the others by editing the file
        else:
            _bump(proxy.policy, n)
        target = reloads_before + n
        wait_for(lambda target=target: metric(proxy, "classgate_policy_reloads_total", result="succeeded") >= target,
                 what=f"reload {n}")
    for t in threads:
        t.join(timeout=120)
    assert not failures, failures[:10]
    assert sum(statuses.values()) == THREADS * REQUESTS
    assert metric(proxy, "classgate_policy_reloads_total", result="succeeded") == reloads_before + RELOADS
    # The last policy (new3.test added) is in force; new1.test is gone again.
    assert curl(proxy.url, "http://new3.test/", source=STUDENT).status == 403
    assert curl(proxy.url, "http://new1.test/", source=STUDENT).status == 200


@pytest.mark.parametrize(
    "bad_text",
    [
        "classgate: 1\nname: [unclosed\n",  # YAML syntax
        TEST_POLICY.replace("action: block, categories: [gambling]", "action: explode, categories: [gambling]"),
        TEST_POLICY.replace("social:   {domains: [social.test]}", "social:   {include: [nosuch/list]}"),
    ],
)
def test_invalid_reload_keeps_the_running_policy(reloading_proxy, bad_text):
    proxy = reloading_proxy
    assert curl(proxy.url, "http://blocked.test/", source=STUDENT).status == 403
    proxy.policy.write_text(bad_text, encoding="utf-8")
    wait_for(lambda: metric(proxy, "classgate_policy_reloads_total", result="rejected") >= 1, what="rejection")
    assert "rejected; still enforcing" in proxy.output()
    assert curl(proxy.url, "http://blocked.test/", source=STUDENT).status == 403
    assert curl(proxy.url, "http://allowed.test/", source=STUDENT).status == 200
    # Fixing the file is picked up again.
    _bump(proxy.policy, 7)
    wait_for(lambda: metric(proxy, "classgate_policy_reloads_total", result="succeeded") >= 1, what="fixed reload")
    assert curl(proxy.url, "http://new7.test/", source=STUDENT).status == 403


def test_schedule_outside_class_hours_and_sigterm(tmp_path, origin, origin_pki):
    policy = tmp_path / "policy.yaml"
    policy.write_text(TEST_POLICY, encoding="utf-8")
    p = ProxyProcess(policy, tmp_path / "state", origin, origin_pki.ca, now="2026-11-23 12:00")
    try:
        assert curl(p.url, "http://social.test/", source=STUDENT).status == 200  # lunch: allowed
        assert curl(p.url, "http://blocked.test/", source=STUDENT).status == 403  # always blocked
        # A keep-alive connection is open when SIGTERM arrives: the process still exits cleanly.
        conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=5)
        conn.request("GET", "http://allowed.test/", headers={"Host": "allowed.test"})
        assert conn.getresponse().read()
    finally:
        rc = p.stop()
    assert rc == 0, p.output()
    out = p.output()
    assert "classgate: stopped" in out
    assert "Traceback" not in out


def test_bad_policy_at_start_is_a_clean_error(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(TEST_POLICY.replace("default: allow", "default: perhaps"), encoding="utf-8")
    r = subprocess.run([str(VENV_BIN / "classgate"), "run", "--policy", str(policy), "--listen",
                        f"127.0.0.1:{free_port()}", "--metrics", "off", "--state-dir", str(tmp_path / "s")],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 1
    assert "policy cannot be used" in r.stderr and "policy.yaml" in r.stderr
    assert "Traceback" not in r.stderr


def test_mitmdump_script(tmp_path, origin, origin_pki):
    policy = tmp_path / "policy.yaml"
    policy.write_text(TEST_POLICY, encoding="utf-8")
    port = free_port()
    env = dict(os.environ, CLASSGATE_TEST_ORIGIN_HTTP=str(origin.http_port),
               CLASSGATE_TEST_ORIGIN_HTTPS=str(origin.https_port), CLASSGATE_TEST_NOW="2026-11-23 09:00")
    cmd = [str(VENV_BIN / "mitmdump"), "-q", "--listen-host", "127.0.0.1", "--listen-port", str(port),
           "--set", f"confdir={tmp_path / 'conf'}", "--set", "connection_strategy=lazy",
           "-s", str(REPO / "agent" / "mitmdump_script.py"), "-s", str(HERE / "proxytest_redirect.py"),
           "--set", f"classgate_policy={policy}", "--set", f"classgate_state_dir={tmp_path / 'state'}"]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_port(port, proc)
        proxy_url = f"http://127.0.0.1:{port}"
        blocked = curl(proxy_url, "http://blocked.test/", source=STUDENT)
        assert blocked.status == 403 and "Cờ bạc" in blocked.text
        assert curl(proxy_url, "http://allowed.test/", source=TEACHER).status == 200
        assert curl(proxy_url, "http://social.test/", source=STUDENT).status == 403
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)


def test_a_restart_with_a_broken_policy_enforces_the_last_good_one(tmp_path, origin, origin_pki):
    """After a reboot a broken overlay must not take the school offline: the last good policy is enforced, loudly."""
    policy, state = tmp_path / "policy.yaml", tmp_path / "state"
    policy.write_text(TEST_POLICY, encoding="utf-8")
    first = ProxyProcess(policy, state, origin, origin_pki.ca)
    try:
        assert curl(first.url, "http://blocked.test/", source=STUDENT).status == 403
    finally:
        assert first.stop() == 0, first.output()
    # Someone saves a broken file and the gateway reboots; the new rule in it must not apply, the old ones must.
    policy.write_text(TEST_POLICY.replace("default: allow", "default: perhaps") + "\n# new.test would be here\n",
                      encoding="utf-8")
    second = ProxyProcess(policy, state, origin, origin_pki.ca)
    try:
        assert curl(second.url, "http://blocked.test/", source=STUDENT).status == 403
        assert curl(second.url, "http://allowed.test/", source=STUDENT).status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{second.metrics_port}/metrics", timeout=5) as r:
            assert "classgate_policy_fallback 1.0" in r.read().decode()
        status = subprocess.run([str(VENV_BIN / "classgate"), "status", "--state-dir", str(state)],
                                capture_output=True, text=True, timeout=30, check=False)
        assert status.returncode == 0, status.stderr
        assert "FALLBACK" in status.stdout and "perhaps" in status.stdout, status.stdout
    finally:
        second.stop()
    out = second.output()
    assert "LAST GOOD" in out and "policy.yaml" in out and "Traceback" not in out
