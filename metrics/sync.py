"""Department sync metrics (`Metrics.sync`), the contract with the gateway-side sync (agent/sync/).

Methods (all never raise; reasons outside `REASONS` / `REJECT_REASONS` are counted as "other"):

    sync = metrics.sync
    sync.enable()                            # sync is configured: its series appear from now on
    sync.record_attempt(at=None)             # one poll of the Department started (at: unix time)
    sync.record_success(at=None)             # that poll finished: up to date or new bundle installed
    sync.record_failure(reason)              # that poll failed, reason in REASONS
    sync.record_bundle_rejected(reason)      # a downloaded bundle was refused, reason in REJECT_REASONS
    sync.set_metadata_expiry(timestamp)      # earliest expiry of the trusted TUF metadata (unix time)
    sync.set_active_bundle(version, installed_at=None)  # the bundle now in force

Exported (only once `enable()` or any record_* was called, so a gateway without sync has none of
these series and the sync alerts stay silent for it):

    classgate_sync_attempts_total
    classgate_sync_failures_total{reason}
    classgate_sync_bundles_rejected_total{reason}
    classgate_sync_last_attempt_timestamp_seconds
    classgate_sync_last_success_timestamp_seconds
    classgate_sync_metadata_expiry_timestamp_seconds
    classgate_sync_bundle_info{version}      # 1; the version string of the active bundle
    classgate_sync_bundle_version            # the same as a number when it is one (for comparisons)
    classgate_sync_bundle_installed_timestamp_seconds

State lives here as plain numbers and is turned into fresh metric families at scrape time (the
client_python custom-collector pattern), which is what lets the series stay absent until enabled.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from classgate.metrics.labels import OTHER, fold

REASONS = (
    "network",  # connection refused, DNS, timeout
    "http_status",  # the Department answered, but not 200
    "verify",  # TUF signature/hash/threshold check failed
    "expired",  # trusted metadata expired and could not be refreshed
    "rollback",  # a version older than the one we trust was offered
    "too_large",  # a download exceeded its size cap
    "invalid_policy",  # verified, but the policy inside does not compile
    "storage",  # could not write the state directory
    "internal",  # a bug in the sync agent
)
_REASONS = frozenset(REASONS)
# A bundle is refused after it was downloaded, so transport reasons do not apply to it.
REJECT_REASONS = ("verify", "expired", "rollback", "too_large", "invalid_policy")
_REJECT_REASONS = frozenset(REJECT_REASONS)


class SyncMetrics(Collector):
    """Sync state, exported at scrape time; registered by `metrics.Metrics`."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self._clock = clock
        self._lock = threading.Lock()
        self._enabled = False
        self._attempts = 0
        self._failures = dict.fromkeys((*REASONS, OTHER), 0)
        self._rejected = dict.fromkeys((*REJECT_REASONS, OTHER), 0)
        self._last_attempt: float | None = None
        self._last_success: float | None = None
        self._metadata_expiry: float | None = None
        self._bundle: tuple[str, float] | None = None

    def enable(self) -> None:
        self._enabled = True

    def record_attempt(self, at: float | None = None) -> None:
        with self._lock:
            self._enabled = True
            self._attempts += 1
            self._last_attempt = self._clock() if at is None else at

    def record_success(self, at: float | None = None) -> None:
        with self._lock:
            self._enabled = True
            self._last_success = self._clock() if at is None else at

    def record_failure(self, reason: str) -> None:
        with self._lock:
            self._enabled = True
            self._failures[fold(reason, _REASONS)] += 1

    def record_bundle_rejected(self, reason: str) -> None:
        with self._lock:
            self._enabled = True
            self._rejected[fold(reason, _REJECT_REASONS)] += 1

    def set_metadata_expiry(self, timestamp: float) -> None:
        with self._lock:
            self._enabled = True
            self._metadata_expiry = float(timestamp)

    def set_active_bundle(self, version: str, installed_at: float | None = None) -> None:
        with self._lock:
            self._enabled = True
            self._bundle = (str(version), self._clock() if installed_at is None else installed_at)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if not self._enabled:
                return
            attempts = CounterMetricFamily(
                "classgate_sync_attempts", "Polls of the Department policy repository started."
            )
            attempts.add_metric([], self._attempts)
            yield attempts
            yield _by_reason("classgate_sync_failures", "Polls that failed, by reason.", self._failures)
            yield _by_reason(
                "classgate_sync_bundles_rejected",
                "Downloaded policy bundles refused, by reason.",
                self._rejected,
            )
            for name, doc, value in (
                ("last_attempt", "When the last poll started (unix time).", self._last_attempt),
                ("last_success", "When a poll last succeeded (unix time).", self._last_success),
                (
                    "metadata_expiry",
                    "When the trusted TUF metadata expires (unix time).",
                    self._metadata_expiry,
                ),
            ):
                if value is not None:
                    yield GaugeMetricFamily(f"classgate_sync_{name}_timestamp_seconds", doc, value=value)
            if self._bundle is not None:
                version, installed_at = self._bundle
                info = GaugeMetricFamily(
                    "classgate_sync_bundle_info",
                    "The active Department bundle (always 1).",
                    labels=["version"],
                )
                info.add_metric([version], 1)
                yield info
                number = _as_number(version)
                if number is not None:
                    yield GaugeMetricFamily(
                        "classgate_sync_bundle_version",
                        "The active bundle version as a number.",
                        value=number,
                    )
                yield GaugeMetricFamily(
                    "classgate_sync_bundle_installed_timestamp_seconds",
                    "When the active bundle was installed (unix time).",
                    value=installed_at,
                )


def _by_reason(name: str, doc: str, counts: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=["reason"])
    for reason, count in counts.items():
        family.add_metric([reason], count)
    return family


def _as_number(version: str) -> float | None:
    # Bundle versions are TUF target versions ("12", "v12"); anything else stays info-only.
    text = version[1:] if version[:1] in ("v", "V") else version
    return float(text) if text.isdigit() else None
