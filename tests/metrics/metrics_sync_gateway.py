"""A Department repository (helper E's `classgate department`) and a gateway that syncs from it.

`classgate run --sync-from` polls every 5-15 minutes and waits up to 5 minutes before its first poll
(jitter for a fleet); a test cannot wait that long and `run` has no flag to shorten it. So the sync
side of the gateway is composed here exactly as agent/commands/run.py composes it (PolicyHolder +
SyncAddon + Metrics + metrics.server) with a 1-2 s poll interval, and served for Prometheus to scrape.
Nothing is stubbed: real TUF metadata over real HTTP, real verification, real policy activation.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import threading
from pathlib import Path

from classgate.metrics import server
from classgate.proxy.metric_labels import gateway_metrics
from tests.metrics.metrics_e2e import classgate_command, wait_for


class DepartmentRepo:
    def __init__(self, workdir: Path, policy: Path):
        self.dir = workdir / "department"
        cmd = classgate_command()
        for args in (
            ["department", "init", str(self.dir)],
            ["department", "publish", str(self.dir), "--policy", str(policy)],
        ):
            result = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120, check=False)
            assert result.returncode == 0, f"classgate {' '.join(args)}:\n{result.stdout}{result.stderr}"
        self.trust_root = self.dir / "repository" / "metadata" / "1.root.json"
        self.log = workdir / "department-serve.log"
        self.proc = subprocess.Popen(
            [*cmd, "department", "serve", str(self.dir), "--listen", "127.0.0.1:0"],
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("wb"),
        )

        def address() -> str | None:
            match = re.search(r"on (http://127\.0\.0\.1:\d+/)", self.log.read_text(errors="replace"))
            return match.group(1) if match else None

        self.url: str = wait_for("classgate department serve", address, 60, self.proc, self.log)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)


class SyncingGateway:
    def __init__(self, repo: DepartmentRepo, state_dir: Path):
        from classgate.agent.sync.gateway_addon import SyncAddon
        from classgate.agent.sync.loop import PollSettings
        from classgate.proxy.policy_holder import PolicyHolder

        self.metrics = gateway_metrics()
        holder = PolicyHolder(cache_dir=state_dir / "compiled", metrics=self.metrics, source="sync")
        self.addon = SyncAddon(
            repo.url,
            repo.trust_root,
            state_dir,
            holder,
            self.metrics,
            poll=PollSettings(min_interval=1, max_interval=2, backoff_base=1, backoff_max=2),
        )
        self.server = server.start(self.metrics, "127.0.0.1", 0)
        self.target = f"127.0.0.1:{self.server.port}"
        self._loop = asyncio.new_event_loop()
        self._stopped = asyncio.Event()
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(self._main(),), daemon=True
        )
        self._thread.start()

    async def _main(self) -> None:
        await self.addon.running()
        await self._stopped.wait()
        self.addon.done()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(timeout=10)
        self.server.close()
