"""End to end: teachers' class actions on a real `classgate run`, made with the real `classgate class` CLI on
the gateway's state dir, seen by real curl clients from several addresses within 2 s, with no reload.

Groups: teachers 127.0.0.2, students 127.0.0.3 (both trust the school CA), guests 127.0.0.4 (no CA: never
intercepted). The gateway runs on the real clock (actions are time-boxed on it), and the policy has no schedule.
"""

from __future__ import annotations

import re
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.proxy.proxytest_support import CLASSGATE, GUEST, STUDENT, TEACHER, ProxyProcess, curl

pytestmark = pytest.mark.e2e

POLICY = """\
classgate: 1
name: class-e2e
timezone: Asia/Ho_Chi_Minh
categories:
  gambling: {domains: [blocked.test], locked: true}
  social:   {domains: [social.test]}
  banking:  {domains: [bank.test]}
groups:
  teachers: {networks: [127.0.0.2/32]}
  students: {networks: [127.0.0.3/32]}
  guests:   {networks: [127.0.0.4/32]}
rules:
  - {name: harmful, action: block, locked: true, categories: [gambling]}
  - {name: no-social, action: block, groups: [students, guests], categories: [social]}
default: allow
tls:
  inspect_groups: [teachers, students]
  never_decrypt: [banking]
teachers: {max_duration: 1h}
local_services: [127.0.0.50]
"""
EFFECTIVE_WITHIN = 2.0  # seconds: the bound on how soon every worker applies an action
ACTION_ID = re.compile(r"^(?:started|ended): ([0-9a-f]{8}) ")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, origin, origin_pki) -> Iterator[ProxyProcess]:
    d = tmp_path_factory.mktemp("class-e2e")
    policy = d / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    p = ProxyProcess(policy, d / "state", origin, origin_pki.ca, now=None)
    yield p
    p.stop()


def classgate_class(gateway: ProxyProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as an admin runs it beside the gateway: no policy given, the gateway's kept one is used."""
    return subprocess.run([str(CLASSGATE), "class", *args, "--state-dir", str(gateway.state_dir)],
                          capture_output=True, text=True, timeout=60, check=False)


def started(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    match = ACTION_ID.match(result.stdout)
    assert match, result.stdout
    return match.group(1)


def seconds_until(condition: Callable[[], bool], limit: float = 10.0) -> float:
    """How long until `condition()` holds (polled; fails after `limit` seconds)."""
    began = time.monotonic()
    while time.monotonic() - began < limit:
        if condition():
            return time.monotonic() - began
        time.sleep(0.05)
    raise AssertionError(f"not true after {limit}s")


def status(gateway: ProxyProcess, client: str, url: str, cacert: Path | None = None) -> int:
    return curl(gateway.url, url, source=client, cacert=cacert, timeout=20).status


def test_allow_then_end(gateway: ProxyProcess) -> None:
    assert status(gateway, STUDENT, "http://social.test/") == 403
    action = started(classgate_class(gateway, "allow", "social.test", "--group", "students", "--for", "10m"))
    took = seconds_until(lambda: status(gateway, STUDENT, "http://social.test/") == 200)
    assert took <= EFFECTIVE_WITHIN, f"the allow took {took:.2f}s"
    r = curl(gateway.url, "https://social.test/feed", source=STUDENT, cacert=gateway.school_ca)
    assert r.status == 200 and '"host": "social.test"' in r.text  # inside intercepted TLS too
    assert status(gateway, GUEST, "http://social.test/") == 403  # another group: still the school's rule
    ended = classgate_class(gateway, "end", action)
    assert ended.returncode == 0, ended.stderr
    took = seconds_until(lambda: status(gateway, STUDENT, "http://social.test/") == 403)
    assert took <= EFFECTIVE_WITHIN, f"the end took {took:.2f}s"


def test_allow_of_a_locked_block_is_refused(gateway: ProxyProcess) -> None:
    result = classgate_class(gateway, "allow", "blocked.test", "--group", "students")
    assert result.returncode == 1
    assert ("blocked.test stays blocked for group 'students': the Department's locked rule 'harmful' blocks it"
            in result.stderr)
    assert classgate_class(gateway, "list").stdout == "no class actions in force\n"
    assert status(gateway, STUDENT, "http://blocked.test/") == 403


def test_pause_blocks_everything_for_the_group_only(gateway: ProxyProcess, origin_pki) -> None:
    students = started(classgate_class(gateway, "pause", "--group", "students", "--for", "5m"))
    guests = started(classgate_class(gateway, "pause", "--group", "guests", "--for", "5m"))
    try:
        took = seconds_until(lambda: status(gateway, STUDENT, "http://allowed.test/") == 403)
        assert took <= EFFECTIVE_WITHIN, f"the pause took {took:.2f}s"
        page = curl(gateway.url, "https://allowed.test/", source=STUDENT, cacert=gateway.school_ca)
        assert page.status == 403 and f"teacher-pause:{students}" in page.text  # the block page, inside TLS
        # The student reads what the teacher did and until when, not a rule id.
        assert "Giáo viên đã tạm dừng Internet cho lớp của em." in page.text and "đến " in page.text, page.text
        # never_decrypt is no way out of a pause: the bank is intercepted (block page), not passed through
        bank = curl(gateway.url, "https://bank.test/", source=STUDENT, cacert=gateway.school_ca)
        assert bank.status == 403
        # a group that is not inspected gets no passthrough: the CONNECT is refused (curl fails), where it
        # reaches the origin once the pause ends (below)
        guest = curl(gateway.url, "https://allowed.test/", source=GUEST, cacert=origin_pki.ca)
        assert guest.returncode != 0 and '"origin": "ok"' not in guest.text
        assert status(gateway, TEACHER, "http://allowed.test/") == 200  # teachers are not paused
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{gateway.metrics_port}/metrics", timeout=5).read()
        text = metrics.decode()
        assert 'classgate_teacher_actions_active{group="students",kind="pause"} 1.0' in text
        assert 'classgate_teacher_actions_active{group="teachers",kind="pause"} 0.0' in text
    finally:
        classgate_class(gateway, "end", students)
        classgate_class(gateway, "end", guests)
    took = seconds_until(lambda: status(gateway, STUDENT, "http://allowed.test/") == 200)
    assert took <= EFFECTIVE_WITHIN
    passed = curl(gateway.url, "https://allowed.test/", source=GUEST, cacert=origin_pki.ca)
    assert passed.status == 200 and '"origin": "ok"' in passed.text


def test_lock_allows_only_its_sites(gateway: ProxyProcess) -> None:
    action = started(classgate_class(gateway, "lock", "allowed.test", "--group", "students", "--for", "5m"))
    try:
        seconds_until(lambda: status(gateway, STUDENT, "http://video.test/") == 403)
        assert status(gateway, STUDENT, "http://allowed.test/a") == 200
        assert status(gateway, STUDENT, "http://www.allowed.test/b") == 200
        assert status(gateway, STUDENT, "http://blocked.test/") == 403
        assert status(gateway, TEACHER, "http://video.test/") == 200
    finally:
        classgate_class(gateway, "end", action)
