"""Sync metrics: absent until sync is used, reasons folded, bundle version as info and number."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from classgate.metrics.sync import SyncMetrics


def scrape(sync: SyncMetrics) -> str:
    registry = CollectorRegistry()
    registry.register(sync)
    return generate_latest(registry).decode()


def value(text: str, series: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_no_series_until_sync_is_used() -> None:
    sync = SyncMetrics()
    assert scrape(sync) == ""
    sync.enable()
    assert value(scrape(sync), "classgate_sync_attempts_total") == 0


@pytest.mark.parametrize(
    ("calls", "series", "expected"),
    [
        ([("record_attempt", 100.0)], "classgate_sync_last_attempt_timestamp_seconds", 100.0),
        ([("record_attempt", 1), ("record_attempt", 2)], "classgate_sync_attempts_total", 2),
        ([("record_success", 7.5)], "classgate_sync_last_success_timestamp_seconds", 7.5),
        ([("record_failure", "verify")], 'classgate_sync_failures_total{reason="verify"}', 1),
        ([("record_failure", "dns is down")], 'classgate_sync_failures_total{reason="other"}', 1),
        (
            [("record_bundle_rejected", "rollback")],
            'classgate_sync_bundles_rejected_total{reason="rollback"}',
            1,
        ),
        ([("record_bundle_rejected", "network")], 'classgate_sync_bundles_rejected_total{reason="other"}', 1),
        ([("set_metadata_expiry", 5e9)], "classgate_sync_metadata_expiry_timestamp_seconds", 5e9),
        ([("set_active_bundle", "17")], 'classgate_sync_bundle_info{version="17"}', 1),
        ([("set_active_bundle", "v17")], "classgate_sync_bundle_version", 17),
        ([("set_active_bundle", "2026-11-24")], "classgate_sync_bundle_version", None),  # not a number
    ],
)
def test_recording(calls: list[tuple[str, object]], series: str, expected: float | None) -> None:
    sync = SyncMetrics(clock=lambda: 1.0)
    for method, arg in calls:
        getattr(sync, method)(arg)
    assert value(scrape(sync), series) == expected


def test_clock_is_used_when_no_time_is_given() -> None:
    sync = SyncMetrics(clock=lambda: 1234.0)
    sync.record_attempt()
    sync.record_success()
    sync.set_active_bundle("3")
    text = scrape(sync)
    assert value(text, "classgate_sync_last_attempt_timestamp_seconds") == 1234.0
    assert value(text, "classgate_sync_bundle_installed_timestamp_seconds") == 1234.0
