"""The sync agent: start from disk, then poll, verify, validate, install, activate; report status.

The start-up sequence, in order (each step only after the previous one):
  1. re-verify the newest installed bundle on disk and activate it: no network needed, so a gateway that
     reboots without a link to the Department enforces its last verified policy;
  2. poll the Department (first poll right away if nothing is installed, else after a random part of one
     interval so a fleet rebooted together does not call in lockstep);
  3. a newer verified bundle is staged, validated as a policy with the school's overlay, renamed into
     place, and activated through the proxy's hot reload. Any failure keeps the running policy.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from classgate.agent.sync.errors import SyncError
from classgate.agent.sync.loop import PollSchedule, PollSettings
from classgate.agent.sync.status import StatusReporter
from classgate.agent.sync.store import BundleStore, Installed, Staged
from classgate.agent.sync.transport import CappedFetcher, Limits, post_json
from classgate.agent.sync.verify import Verifier, classify
from classgate.metrics import Metrics

log = logging.getLogger(__name__)

# Called with the installed bundle; returns the policy's content digest, or raises SyncError("activate").
Activator = Callable[[Installed], Awaitable[str | None]]
REPORT_EVERY = 3600.0  # an unchanged gateway reports upward at most hourly


@dataclass(frozen=True)
class SyncConfig:
    url: str
    trust_root: bytes
    state_dir: Path
    overlay_path: Path | None = None
    poll: PollSettings = field(default_factory=PollSettings)
    limits: Limits = field(default_factory=Limits)
    report_to: str | None = None
    gateway: str = field(default_factory=socket.gethostname)

    @property
    def sync_dir(self) -> Path:
        return self.state_dir / "sync"


def group_table(policy_path: Path, overlay_path: Path | None) -> dict[str, dict[str, object]]:
    """The policy's groups with their place in the tree and their sizes, for status and the upward report."""
    from classgate.policies import PolicyError, read_document
    from classgate.policies.groups import address_counts

    try:
        doc = read_document(policy_path, overlay_path)
    except (PolicyError, OSError):
        return {}
    counts = address_counts(doc.groups)
    return {name: {"in": group.parent, "ipv4": counts[name].ipv4, "ipv6_networks": counts[name].ipv6_networks}
            for name, group in doc.groups.items()}


def validate_policy(policy_path: Path, overlay_path: Path | None, cache_dir: Path | None) -> str:
    """Compile the policy (with the overlay) as the proxy would; returns its version. Raises SyncError."""
    from classgate.policies import PolicyError, load_policy

    try:
        return str(load_policy(policy_path, overlay=overlay_path, cache_dir=cache_dir).version)
    except PolicyError as e:
        raise SyncError("invalid_policy", "the policy does not validate: " +
                        "; ".join(str(p) for p in e.problems[:20])) from None
    except Exception as e:  # noqa: BLE001 - a compiler bug must refuse the bundle, not crash the agent
        raise SyncError("invalid_policy", f"the policy could not be compiled: {type(e).__name__}: {e}") from None


class SyncService:
    def __init__(self, config: SyncConfig, activate: Activator | None = None, metrics: Metrics | None = None,
                 schedule: PollSchedule | None = None):
        self.config = config
        self.activate_hook = activate
        self.fetcher = CappedFetcher(config.limits)
        self.verifier = Verifier(config.url, config.trust_root, config.sync_dir, self.fetcher)
        self.store = BundleStore(config.sync_dir, config.trust_root)
        self.reporter = StatusReporter(config.state_dir, metrics, config.url, config.gateway)
        self.schedule = schedule or PollSchedule(config.poll)
        self.active: Installed | None = None
        self._rejected: tuple[int, float | None, str] | None = None  # (version, overlay mtime, message)
        self._last_report: tuple[float, tuple[object, ...]] | None = None

    # --- start-up ------------------------------------------------------------------------------------

    async def start(self, activate: bool = True) -> Installed | None:
        """Step 1: activate the newest installed bundle that re-verifies; no network.

        `activate=False` (standalone `classgate sync`) only finds which bundle is installed.
        """
        try:
            installed, notes = await asyncio.to_thread(self.store.load)
        except SyncError as e:
            log.warning("sync: %s; waiting for the first bundle from %s", e, self.config.url)
            self.reporter.status.state = "no_bundle"
            self.reporter.note(str(e))
            return None
        for note in notes:
            self.reporter.note(note)
        try:
            policy_version = await self._activate(installed) if activate else None
        except SyncError as e:
            self.reporter.failure(e.reason, f"installed bundle {installed.version}: {e}", installed.version)
            return None
        self.active = installed
        groups = await asyncio.to_thread(group_table, installed.policy_path, self.config.overlay_path)
        self.reporter.activated(installed.version, policy_version, installed.bundle.published,
                                installed.bundle.expires, groups)
        log.info("sync: enforcing installed bundle %s (verified from disk)", installed.version)
        return installed

    # --- one poll --------------------------------------------------------------------------------------

    async def sync_once(self) -> bool:
        """Step 2-3 once. True when the gateway is up to date with the Department afterwards."""
        self.reporter.attempt()
        version: int | None = None
        lock = await asyncio.to_thread(self.store.acquire)
        try:
            active_version = self.active.version if self.active else None
            bundle, expires = await asyncio.to_thread(self.verifier.fetch_latest, active_version)
            if bundle is None:
                self.reporter.success(expires)
                return True
            version = bundle.version
            overlay_stamp = self._overlay_stamp()
            if self._rejected and self._rejected[:2] == (version, overlay_stamp):
                raise SyncError("invalid_policy", self._rejected[2])  # same bundle, same overlay: no recompile
            staged = await asyncio.to_thread(self.store.stage, bundle)
            try:
                policy_version = await self._validate(staged)
            except SyncError as e:
                self.store.discard(staged)
                self._rejected = (version, overlay_stamp, str(e))
                raise
            installed = await asyncio.to_thread(self.store.commit, staged)
            previous = self.active
            try:
                policy_version = await self._activate(installed) or policy_version
            except SyncError:
                if previous is not None:  # keep disk and proxy in agreement: the old bundle stays current
                    await asyncio.to_thread(self.store.point_current, previous.path)
                raise
            self.active = installed
            await asyncio.to_thread(self.store.prune_cache, bundle)
            groups = await asyncio.to_thread(group_table, installed.policy_path, self.config.overlay_path)
            self.reporter.activated(installed.version, policy_version, bundle.published, expires, groups)
            self.reporter.success(expires)
            log.info("sync: bundle %s installed and active (was %s)", installed.version,
                     previous.version if previous else "none")
            return True
        except Exception as e:  # noqa: BLE001 - every failure is reported; the running policy stays
            error = classify(e)
            self.reporter.failure(error.reason, str(error), version)
            log.warning("sync: %s: %s (still enforcing bundle %s)", error.reason, error,
                        self.active.version if self.active else "none")
            return False
        finally:
            self.store.release(lock)
            await self._report()

    async def _validate(self, staged: Staged) -> str:
        cache = self.config.state_dir / "compiled"
        return await asyncio.to_thread(validate_policy, staged.policy_path, self.config.overlay_path, cache)

    async def _activate(self, installed: Installed) -> str | None:
        if self.activate_hook is None:  # standalone `classgate sync`: validating is activating
            return await asyncio.to_thread(validate_policy, installed.policy_path, self.config.overlay_path,
                                           self.config.state_dir / "compiled")
        return await self.activate_hook(installed)

    def _overlay_stamp(self) -> float | None:
        path = self.config.overlay_path
        try:
            return path.stat().st_mtime if path else None
        except OSError:
            return None

    # --- the loop --------------------------------------------------------------------------------------

    async def run(self, activate: bool = True) -> None:
        """Start from disk, then poll forever (until cancelled)."""
        await self.start(activate)
        await self.run_polls()

    async def run_polls(self) -> None:
        """Poll forever (after `start()`): jittered interval on success, backoff on failure."""
        delay = 0.0 if self.active is None else self.schedule.first_delay()
        while True:
            self.reporter.scheduled(delay)
            await asyncio.sleep(delay)
            ok = await self.sync_once()
            delay = self.schedule.after_success() if ok else self.schedule.after_failure()

    # --- upward report (off unless --report-to) --------------------------------------------------------

    def report_body(self) -> dict[str, object]:
        """What the Department sees of this gateway: versions and health, no usage data."""
        s = self.reporter.status
        return {
            "gateway": self.config.gateway,
            "state": s.state,
            "active_version": s.active_version,
            "active_policy": s.active_policy,
            "last_success": s.last_success,
            "metadata_expires": s.metadata_expires,
            "error": (s.last_error or {}).get("reason"),
            "consecutive_failures": s.consecutive_failures,
            "groups": s.groups,
        }

    async def _report(self) -> None:
        if not self.config.report_to:
            return
        body = self.report_body()
        key = (body["state"], body["active_version"], body["error"])
        now = time.monotonic()
        if self._last_report and self._last_report[1] == key and now - self._last_report[0] < REPORT_EVERY:
            return
        try:
            status = await asyncio.to_thread(post_json, self.config.report_to, json.dumps(body).encode(),
                                             self.config.limits)
            if status < 300:
                self._last_report = (now, key)
        except Exception as e:  # noqa: BLE001 - reporting is best effort and never affects filtering
            log.debug("sync: status report to %s failed: %s", self.config.report_to, e)
