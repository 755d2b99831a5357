"""The sync agent inside `classgate run`: a mitmproxy addon around agent.sync.service.SyncService.

`running()` activates the last verified bundle from disk (awaited: no network, and the proxy enforces it
before the first poll), then starts the poll loop as a task; `done()` cancels it. Activation goes through
the proxy's PolicyHolder hot reload, which swaps the policy atomically: requests in flight keep the policy
object they started with, so none fails during the switch.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from classgate.agent.sync.errors import SyncError
from classgate.agent.sync.loop import PollSettings
from classgate.agent.sync.service import SyncConfig, SyncService
from classgate.agent.sync.store import Installed
from classgate.agent.sync.transport import Limits
from classgate.metrics import Metrics
from classgate.proxy.policy_holder import PolicyHolder

log = logging.getLogger(__name__)


def poll_settings(min_interval: float, max_interval: float) -> PollSettings:
    """Poll between `min_interval` and `max_interval` seconds; backoff stays within the same bounds."""
    if not 0 < min_interval <= max_interval:
        raise ValueError(f"poll interval {min_interval}-{max_interval}: need 0 < MIN <= MAX")
    default = PollSettings()
    return PollSettings(min_interval=min_interval, max_interval=max_interval,
                        backoff_base=min(default.backoff_base, min_interval),
                        backoff_max=max(default.backoff_max, max_interval))


def read_trust_root(trust_root: Path | str | bytes) -> bytes:
    """The install-time root.json, as bytes (a path or the bytes themselves)."""
    if isinstance(trust_root, bytes):
        return trust_root
    return Path(trust_root).read_bytes()


def installed_policy(state_dir: Path | str, trust_root: Path | str | bytes) -> Path | None:
    """The policy file of the newest installed bundle that re-verifies, or None.

    For `classgate run --sync-from`: start the proxy on the last verified Department policy instead of a
    default one, so not a single request is decided by anything else (the addon re-verifies it again).
    """
    from classgate.agent.sync.errors import SyncError
    from classgate.agent.sync.store import BundleStore

    try:
        installed, _ = BundleStore(Path(state_dir) / "sync", read_trust_root(trust_root)).load()
    except (SyncError, OSError):
        return None
    return installed.policy_path


class SyncAddon:
    def __init__(
        self,
        url: str,
        trust_root: Path | str | bytes,
        state_dir: Path | str,
        holder: PolicyHolder,
        metrics: Metrics | None,
        overlay_path: Path | str | None = None,
        *,
        poll: PollSettings | None = None,
        limits: Limits | None = None,
        report_to: str | None = None,
        gateway: str | None = None,
    ):
        self.holder = holder
        self.overlay_path = Path(overlay_path) if overlay_path else None
        extra: dict[str, Any] = {"gateway": gateway} if gateway else {}
        config = SyncConfig(
            url=url,
            trust_root=read_trust_root(trust_root),
            state_dir=Path(state_dir),
            overlay_path=self.overlay_path,
            poll=poll or PollSettings(),
            limits=limits or Limits(),
            report_to=report_to,
            **extra,
        )
        self.service = SyncService(config, activate=self._activate, metrics=metrics)
        self._task: asyncio.Task[None] | None = None

    async def _activate(self, installed: Installed) -> str | None:
        ok = await self.holder.reload(policy_path=installed.policy_path, overlay_path=self.overlay_path)
        if not ok:
            raise SyncError("activate", f"the proxy refused to load bundle {installed.version}'s policy")
        policy = getattr(self.holder, "policy", None)
        return str(policy.version) if policy is not None else None

    async def running(self) -> None:
        if self._task is not None:
            return
        try:
            await self.service.start()
        except Exception:  # a bug here must not stop the polling that could bring a good bundle
            log.exception("sync: activating the installed bundle failed")
        self._task = asyncio.get_running_loop().create_task(self._poll(), name="classgate-sync")

    async def _poll(self) -> None:
        try:
            await self.service.run_polls()
        except asyncio.CancelledError:
            raise
        except Exception:  # the loop itself must never die silently: say so loudly
            log.exception("sync: the poll loop stopped; the gateway keeps its current policy")

    def done(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
