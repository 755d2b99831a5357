"""`classgate run --workers N`: one of N proxy processes on one port (the supervisor is agent/supervisor.py).

One process runs mitmproxy on one core. The supervisor (the `classgate run` process) loads the policy once
(it compiles into `<state>/compiled`; workers load the index from there, memory-mapped, so N workers hold
one copy in the page cache), creates the CA, binds the gateway's one metrics endpoint, then starts N workers
(`python -m classgate.agent.workers`, handed a `WorkerSpec` on stdin). Every worker binds the proxy port
with SO_REUSEPORT (agent/master.py `shared_port_loop`): the kernel spreads connections, and a worker that
dies loses its own connections only; the supervisor starts it again.

Exactly once per gateway: the DNS listener and the Department sync run in worker 0 only. The other workers
follow the sync through the state dir (`SyncFollower`): when worker 0 points `sync/current` at a new
verified bundle, they reload it. A reload compiles once: the compile child takes a lock in the cache
(proxy/precompile.py) and the workers after the first find the index compiled.

One log stream: workers write to the supervisor's stdout and stderr. One metrics endpoint: the supervisor
merges the workers' own loopback endpoints at scrape time (metrics/merge.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from classgate.agent.gateway import Gateway, GatewayConfig, GatewayError, build_gateway
from classgate.agent.worker_names import NamesFeed, PublishingNames, socket_path
from classgate.policies.atomicfile import atomic_write
from classgate.proxy.addons.device_limit import worker_share
from classgate.proxy.address import Address
from classgate.proxy.name_addresses import NameAddresses

if TYPE_CHECKING:
    from classgate.agent.sync.store import Installed

log = logging.getLogger(__name__)

WORKER_LOOPBACK: Final = Address("127.0.0.1", 0)  # each worker's own metrics: loopback, any free port
FOLLOW_SECONDS: Final = 0.2  # how often a worker looks at sync/current (a readlink: nothing to spare)



@dataclass(frozen=True)
class WorkerSpec:
    """What a worker is started with, pickled to its stdin by the supervisor (a parent it trusts)."""

    index: int
    config: GatewayConfig
    topsites_key: bytes  # one key for the whole gateway: a device is one client across workers
    report: Path  # written once the worker listens: {"pid", "metrics"}
    parent: int  # the supervisor's pid: a worker whose parent is gone stops
    count: int  # how many workers the gateway has
    resolver_in_gateway: bool  # --dns: worker 0's resolver shares its answers (agent/worker_names.py)


def worker_config(config: GatewayConfig, index: int, count: int) -> GatewayConfig:
    """A worker's settings: its own loopback metrics; the DNS listener only in worker 0; its share of the
    per-device connection limit. (The sync settings stay in all: every worker starts on the installed bundle,
    but only worker 0 polls, see `worker_main`.)"""
    return dataclasses.replace(
        config,
        metrics=WORKER_LOOPBACK if config.metrics is not None else None,
        dns=config.dns if index == 0 else None,
        device_connections=worker_share(config.device_connections, count),
    )


class ReadyReport:
    """A worker's addon: says the worker listens (the report file, once servers are up), and stops the
    worker when its supervisor is gone, so a killed supervisor leaves no proxy holding the port.

    Without a file watcher (`classgate_reload_interval_ms=0`) it also closes a gap the other workers do not
    have: the policy files may change while this worker starts, when the workers before it already listen
    and reload on SIGHUP; a difference from the files as its policy was read (`holder.files_as_loaded`)
    reloads at `running`. With a watcher, the watcher's first look does the same."""

    def __init__(self, spec: WorkerSpec, gateway: Gateway) -> None:
        self.spec = spec
        self.gateway = gateway
        self._tasks: set[asyncio.Task[object]] = set()

    def running(self) -> None:
        from mitmproxy import ctx

        from classgate.proxy.policy_files import snapshot

        loop = asyncio.get_running_loop()
        holder = self.gateway.holder
        if (ctx.options.classgate_reload_interval_ms <= 0 and holder.files_as_loaded
                and snapshot(holder.watched_paths()) != holder.files_as_loaded):
            log.info("classgate: worker %d: the policy files changed while it started: reloading", self.spec.index)
            self._tasks.add(loop.create_task(holder.reload(), name="classgate-worker-catch-up"))
        server = self.gateway.metrics_server
        doc = {"pid": os.getpid(), "metrics": server.port if server is not None else None}
        atomic_write(self.spec.report, json.dumps(doc).encode())
        self._tasks.add(loop.create_task(self._watch_parent(), name="classgate-worker-parent"))

    async def _watch_parent(self) -> None:
        from mitmproxy import ctx

        while os.getppid() == self.spec.parent:
            await asyncio.sleep(1.0)
        log.error("classgate: worker %d: the supervisor is gone; stopping", self.spec.index)
        ctx.master.shutdown()

    def done(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()


class SyncFollower:
    """In workers other than 0: enforce the bundle worker 0's sync installed (`sync/current` moved), and say
    which bundle this worker enforces in its own metrics (the gateway's version is the one all enforce)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._task: asyncio.Task[None] | None = None

    def running(self) -> None:
        self._report()
        self._task = asyncio.get_running_loop().create_task(self._follow(), name="classgate-sync-follower")

    def done(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def _installed(self) -> Installed | None:
        from classgate.agent.sync.errors import SyncError
        from classgate.agent.sync.gateway_addon import read_trust_root
        from classgate.agent.sync.store import BundleStore

        settings = self.gateway.config.sync
        assert settings is not None
        try:
            store = BundleStore(self.gateway.config.state_dir / "sync", read_trust_root(settings.trust_root))
            return store.load()[0]
        except (SyncError, OSError):
            return None

    def _report(self, installed: Installed | None = None) -> None:
        installed = installed or self._installed()
        if installed is not None and installed.policy_path == self.gateway.holder.policy_path:
            self.gateway.metrics.sync.set_active_bundle(str(installed.version))

    async def _follow(self) -> None:
        link = self.gateway.config.state_dir / "sync" / "current"
        seen = _link(link)
        while True:
            await asyncio.sleep(FOLLOW_SECONDS)
            now = _link(link)
            if now == seen:
                continue
            seen = now
            installed = await asyncio.to_thread(self._installed)
            if installed is not None and installed.policy_path != self.gateway.holder.policy_path:
                log.info("the Department sync installed bundle %s: reloading", installed.version)
                await self.gateway.holder.reload(policy_path=installed.policy_path,
                                                 overlay_path=self.gateway.config.overlay)
            self._report(installed)


def _link(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def worker_main() -> int:
    """A worker: build the gateway from the spec on stdin, serve it on the shared port until stopped."""
    from classgate.agent.master import MasterError, log_times_in, run_master, serve_gateway
    from classgate.policies import PolicyError
    from classgate.proxy.ca import CaError

    spec: WorkerSpec = pickle.loads(sys.stdin.buffer.read())
    name = f"classgate worker {spec.index}"
    run_dir = spec.report.parent
    names: NameAddresses | None = None
    if spec.resolver_in_gateway:
        names = PublishingNames([socket_path(run_dir, i) for i in range(1, spec.count)]) if spec.index == 0 \
            else NameAddresses()
    try:
        gateway = build_gateway(spec.config, names)
    except PolicyError as e:
        print(f"{name}: the policy cannot be used:\n{e}", file=sys.stderr)
        return 1
    except (CaError, GatewayError, OSError) as e:
        print(f"{name}: {e}", file=sys.stderr)
        return 1
    gateway.metrics.topsites.share_key(spec.topsites_key)
    policy = gateway.policy
    if policy is not None:
        log_times_in(policy.timezone.key)
    gateway.holder.on_swap(lambda p: log_times_in(p.timezone.key))
    extra: list[object] = []
    if names is not None and spec.index != 0:
        extra.append(NamesFeed(names, socket_path(run_dir, spec.index)))  # before the report: ready to learn
    extra.append(ReadyReport(spec, gateway))
    if spec.index != 0 and spec.config.sync is not None:
        from classgate.agent.sync.gateway_addon import SyncAddon

        # The Department is polled once per gateway, by worker 0; the others follow what it installs.
        gateway.addons = [a for a in gateway.addons if not isinstance(a, SyncAddon)]
        extra.append(SyncFollower(gateway))
    try:
        run_master(lambda: serve_gateway(gateway, extra), spec.config.listen, share_port=True)
    except MasterError as e:
        print(f"{name}: {e}", file=sys.stderr)
        return 1
    finally:
        gateway.close()
    return 0


if __name__ == "__main__":
    sys.exit(worker_main())
