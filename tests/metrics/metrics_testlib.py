"""Helpers shared by the metrics tests (a uniquely named module: `conftest` is ambiguous across test folders)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from classgate.metrics import Metrics

FIXED_TIME = 1_790_000_000.0
REPO = Path(__file__).resolve().parents[2]
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


def need_tool(path: str) -> str:
    if not Path(path).exists():
        pytest.skip(f"{path} is not installed (Debian package `prometheus`, see .ci/install)")
    return path


def feed_known_events(m: Metrics) -> None:
    """One of every kind of event, including values that must fold into "other"."""
    m.set_policy("3f9a1c2e", FIXED_TIME - 60, ["games", "social", "adult"], ["students", "teachers"], "sync")
    m.record_request("games", "students", "block", "department", 300, 5_000)
    m.record_request("games", "students", "block", "locked", 300, 5_000)
    m.record_request("social", "teachers", "allow", "school", 1_200, 80_000)
    m.record_request("uncategorized", "default", "allow", "default", 0, 1_000_000)
    m.record_request("www.not-a-category.com", "10.0.0.9", "allow", "default", 10, 10)
    m.record_request("adult", "students", "block", "made-up-tier", 0, 0)
    for seconds in (0.00002, 0.00004, 0.0003, 0.002, 0.5):
        m.observe_decision(seconds)
    for mode in ("intercepted", "intercepted", "passthrough", "refused", "quantum"):
        m.record_tls(mode)
    m.record_safesearch("google")
    m.record_safesearch("youtube")
    m.record_filter_error("request")
    m.record_filter_error("somewhere-new")
    m.record_reload(True)
    m.record_reload(False)
    m.sync.record_attempt(at=FIXED_TIME - 30)
    m.sync.record_success(at=FIXED_TIME - 29)
    m.sync.record_failure("network")
    m.sync.record_bundle_rejected("invalid_policy")
    m.sync.set_metadata_expiry(FIXED_TIME + 86_400)
    m.sync.set_active_bundle("v42", installed_at=FIXED_TIME - 29)
    for client in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        m.topsites.observe("games", "www.roblox.com", client)

