"""The sync status: one JSON file written atomically (read by `classgate status`), mirrored into metrics.

The status says what an admin asks first: which bundle is enforced, since when, when the Department was
last reached, when the trusted metadata expires, and why the last attempt failed. No client data.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from classgate.agent.sync.errors import METRIC_REASON, POLICY_REFUSED, REFUSED, Reason
from classgate.metrics import Metrics
from classgate.policies.atomicfile import atomic_write

STATUS_FILE = "status.json"

def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class SyncStatus:
    url: str = ""
    gateway: str = ""
    state: str = "starting"  # "ok" | "failing" | "no_bundle" | "starting"
    active_version: int | None = None
    active_policy: str | None = None  # the policy's own content digest (policy.version)
    active_published: str | None = None
    active_since: float | None = None
    last_attempt: float | None = None
    last_success: float | None = None
    next_attempt: float | None = None
    metadata_expires: float | None = None
    consecutive_failures: int = 0
    last_error: dict[str, Any] | None = None  # {"reason", "message", "at"}
    rejected: dict[str, Any] | None = None  # the last bundle refused: {"version", "reason", "message", "at"}
    notes: list[str] = field(default_factory=list)  # e.g. a corrupted bundle skipped at start
    # The active policy's groups: {name: {"in": parent group, "ipv4": addresses, "ipv6_networks": n}}. Sizes
    # only (no address): the Department sees that each school filled its groups, and how.
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("active_since", "last_attempt", "last_success", "next_attempt", "metadata_expires"):
            data[key] = iso(data[key])
        if self.last_error:
            data["last_error"] = {**self.last_error, "at": iso(self.last_error.get("at"))}
        if self.rejected:
            data["rejected"] = {**self.rejected, "at": iso(self.rejected.get("at"))}
        return data


class StatusReporter:
    """Keeps the SyncStatus, writes it to `state_dir/status.json` and mirrors it to metrics (if any)."""

    def __init__(self, state_dir: Path, metrics: Metrics | None = None, url: str = "", gateway: str = ""):
        self.path = state_dir / STATUS_FILE
        self.metrics_sync = metrics.sync if metrics is not None else None
        self.status = SyncStatus(url=url, gateway=gateway)
        if self.metrics_sync is not None:
            self.metrics_sync.enable()

    def attempt(self) -> None:
        self.status.last_attempt = time.time()
        if self.metrics_sync is not None:
            self.metrics_sync.record_attempt(self.status.last_attempt)

    def success(self, metadata_expires: dt.datetime | None) -> None:
        s = self.status
        s.last_success = time.time()
        s.consecutive_failures = 0
        s.last_error = None
        s.state = "ok" if s.active_version is not None else "no_bundle"
        if metadata_expires is not None:
            s.metadata_expires = metadata_expires.timestamp()
        if self.metrics_sync is not None:
            self.metrics_sync.record_success(s.last_success)
            if s.metadata_expires is not None:
                self.metrics_sync.set_metadata_expiry(s.metadata_expires)
        self.write()

    def failure(self, reason: Reason, message: str, version: int | None = None) -> None:
        s = self.status
        now = time.time()
        s.consecutive_failures += 1
        s.last_error = {"reason": reason, "message": message[:2000], "at": now}
        s.state = "failing" if s.active_version is not None else "no_bundle"
        if reason in POLICY_REFUSED and version is not None:
            s.rejected = {"version": version, "reason": reason, "message": message[:4000], "at": now}
        if self.metrics_sync is not None:
            self.metrics_sync.record_failure(METRIC_REASON[reason])
            if reason in REFUSED:
                self.metrics_sync.record_bundle_rejected(METRIC_REASON[reason])
        self.write()

    def activated(self, version: int, policy_version: str | None, published: str,
                  metadata_expires: dt.datetime | None, groups: dict[str, dict[str, Any]] | None = None) -> None:
        s = self.status
        s.groups = groups or {}
        s.active_version, s.active_policy, s.active_published = version, policy_version, published
        s.active_since = time.time()
        if s.rejected and isinstance(s.rejected.get("version"), int) and s.rejected["version"] <= version:
            s.rejected = None  # that refusal is history: a bundle at least as new is in force now
        s.notes = [n for n in s.notes if not n.startswith("no verified bundle")]  # no longer true
        if metadata_expires is not None and s.metadata_expires is None:
            s.metadata_expires = metadata_expires.timestamp()
        if s.state in ("starting", "no_bundle"):
            s.state = "ok"
        if self.metrics_sync is not None:
            self.metrics_sync.set_active_bundle(str(version), s.active_since)
            if s.metadata_expires is not None:
                self.metrics_sync.set_metadata_expiry(s.metadata_expires)
        self.write()

    def scheduled(self, delay: float) -> None:
        self.status.next_attempt = time.time() + delay
        self.write()

    def note(self, text: str) -> None:
        self.status.notes = (self.status.notes + [text])[-10:]
        self.write()

    def write(self) -> None:
        write_status(self.path, self.status.to_json())


def write_status(path: Path, data: dict[str, Any]) -> None:
    atomic_write(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def read_status(state_dir: Path) -> dict[str, Any]:
    """The status file as written; raises OSError / ValueError (the CLI says which)."""
    data = json.loads((state_dir / STATUS_FILE).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{state_dir / STATUS_FILE}: not a status object")  # noqa: TRY004 (bad file content)
    return data
