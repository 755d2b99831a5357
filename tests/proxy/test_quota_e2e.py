"""End to end: a daily quota of 1 minute on a real `classgate run`, used up on the real clock.

The quota counts minutes of the clock in which a device makes requests (proxy/quota.py), so this test needs a
clock that moves: the gateway runs on the real clock (no CLASSGATE_TEST_NOW), and the test waits for the next
minute to start (at most a minute). The policy's time zone is chosen so that local midnight is hours away.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import urllib.request
from zoneinfo import ZoneInfo

import pytest

from tests.proxy.proxytest_support import ProxyProcess, curl
from tests.proxy.test_warn_e2e import forget_quota_table

pytestmark = pytest.mark.e2e

DEVICE, OTHER_DEVICE = "127.0.0.3", "127.0.0.6"
ZONES = ("Asia/Ho_Chi_Minh", "Europe/London", "America/New_York", "Pacific/Auckland")

QUOTA_POLICY = """\
classgate: 1
name: quota-e2e
timezone: {zone}
categories:
  video: {{domains: [video.test]}}
groups:
  students: {{networks: [127.0.0.3/32, 127.0.0.6/32]}}
rules:
  - {{name: video-time, action: allow, groups: [students], categories: [video], quota: {{minutes: 1}}}}
default: allow
local_services: [127.0.0.50]
"""


def zone_far_from_midnight() -> str:
    for zone in ZONES:
        if 1 <= dt.datetime.now(ZoneInfo(zone)).hour <= 22:
            return zone
    raise AssertionError("every zone is within an hour of midnight")  # cannot happen: they span 19 hours


def this_minute() -> int:
    return int(time.time() // 60)


def wait_until(ready, what: str) -> None:
    """Sleep until `ready()` (at most 65 s: within a minute of the clock)."""
    deadline = time.monotonic() + 65
    while not ready():
        assert time.monotonic() < deadline, f"waited too long for {what}"
        time.sleep(0.2)


def used_up_count(proxy: ProxyProcess) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{proxy.metrics_port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    match = re.search(r'^classgate_quotas_used_up_total\{category="video",group="students"\} (\S+)$', text,
                      re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_a_one_minute_quota_is_used_up_and_blocks(tmp_path, origin, origin_pki):
    policy = tmp_path / "policy.yaml"
    policy.write_text(QUOTA_POLICY.format(zone=zone_far_from_midnight()), encoding="utf-8")
    proxy = ProxyProcess(policy, tmp_path / "state", origin, origin_pki.ca, now=None)
    try:
        wait_until(lambda: 1 <= dt.datetime.now().second <= 45, "the start of a minute")
        first_minute = this_minute()
        for path in ("/one", "/two"):  # the same minute: counted once, both pass
            r = curl(proxy.url, f"http://video.test{path}", source=DEVICE)
            assert r.status == 200, r.text
        assert this_minute() == first_minute
        wait_until(lambda: this_minute() > first_minute, "the next minute")  # a second minute: past the quota
        blocked = curl(proxy.url, "http://video.test/three", source=DEVICE)
        assert blocked.status == 403
        assert "00:00" in blocked.text and "hết thời gian" in blocked.text
        assert re.search(r'<p class="ask">.*[A-Z2-9]{4}-[A-Z2-9]{4}', blocked.text)  # "ask your teacher"
        assert origin.find("video.test", "/three") == []
        again = curl(proxy.url, "http://video.test/four", source=DEVICE)
        assert again.status == 403
        # Another device has its own quota; the first refusal of a device is counted once.
        assert curl(proxy.url, "http://video.test/other", source=OTHER_DEVICE).status == 200
        assert used_up_count(proxy) == 1
        assert len(origin.find("video.test", "/one")) == len(origin.find("video.test", "/two")) == 1
    finally:
        proxy.stop()
        forget_quota_table(tmp_path / "state")
