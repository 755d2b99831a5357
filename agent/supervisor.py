"""The supervisor of `classgate run --workers N`: starts the workers, restarts one that dies, stops them all.

The `classgate run` process, after it has loaded the policy, made the CA and bound the one metrics endpoint
(agent/commands/run.py), starts N workers (agent/workers.py), each `python -m classgate.agent.workers` with its
`WorkerSpec` pickled on stdin, and waits until each has written its report (it listens). Then it watches:
a worker that stopped is started again (at once if it had run a while, after a growing pause if it keeps
dying at its start, so a crash loop does not take the cores); SIGHUP is forwarded to every worker (each
reloads its policy); SIGTERM or SIGINT stops them all, with a bound on the wait. Its own series
(`classgate_workers`, `classgate_workers_up`, `classgate_worker_restarts_total`) join the merged metrics.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from classgate.agent.gateway import GatewayConfig, GatewayError
from classgate.agent.workers import WorkerSpec, worker_config
from classgate.metrics.merge import WorkerEndpoint

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS: Final = 120.0
STOP_TIMEOUT_SECONDS: Final = 20.0
POLL_SECONDS: Final = 0.2
# A worker that dies soon after its start is restarted after a growing pause (a crash loop must not
# take both cores); one that ran this long starts again at once.
STEADY_SECONDS: Final = 10.0
MAX_BACKOFF_SECONDS: Final = 30.0


def restart_pause(lived: float, failures: int) -> tuple[int, float]:
    """(deaths in a row at start, seconds to wait) for a worker that stopped after `lived` seconds, having died
    `failures` times in a row soon after its start before: at once after a steady run, then 0.5, 1, 2... 30 s."""
    if lived >= STEADY_SECONDS:
        return 0, 0.0
    failures += 1
    return failures, min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** (failures - 1))


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen[bytes]
    started: float
    ready: bool = False  # it wrote its report: it listens
    endpoint: WorkerEndpoint | None = None  # its own metrics (None with --metrics off)
    failures: int = 0  # deaths in a row soon after a start


class Supervisor:
    """Starts N workers, restarts one that dies, forwards SIGHUP, stops them all on SIGTERM/SIGINT."""

    def __init__(self, config: GatewayConfig, count: int, run_dir: Path) -> None:
        self.config = config
        self.count = count
        self.run_dir = run_dir
        self.restarts = 0
        self._key = secrets.token_bytes(16)
        self._workers: dict[int, _Worker] = {}
        self._stopping = False
        self._pending: dict[int, float] = {}  # worker index -> when to start it again

    def endpoints(self) -> list[WorkerEndpoint]:
        """The workers' metrics endpoints now (a restarting worker is missing until it listens)."""
        return [w.endpoint for w in list(self._workers.values()) if w.ready and w.endpoint is not None]

    def ready_count(self) -> int:
        return sum(1 for w in list(self._workers.values()) if w.ready and w.proc.poll() is None)

    def pids(self) -> list[int]:
        return [w.proc.pid for w in self._workers.values() if w.proc.poll() is None]

    def collector(self) -> Collector:
        return _SupervisorCollector(self)

    def _spawn(self, index: int, failures: int = 0) -> _Worker:
        report = self.run_dir / f"worker-{index}.json"
        report.unlink(missing_ok=True)
        spec = WorkerSpec(index, worker_config(self.config, index, self.count), self._key, report, os.getpid(), self.count,
                          self.config.dns is not None)
        proc = subprocess.Popen([sys.executable, "-m", "classgate.agent.workers"], stdin=subprocess.PIPE)
        assert proc.stdin is not None
        try:
            proc.stdin.write(pickle.dumps(spec))
            proc.stdin.close()
        except OSError:  # it died at once: the loop sees the exit
            pass
        worker = _Worker(index, proc, time.monotonic(), failures=failures)
        self._workers[index] = worker
        return worker

    def _read_report(self, worker: _Worker) -> bool:
        try:
            doc = json.loads((self.run_dir / f"worker-{worker.index}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        if doc.get("pid") != worker.proc.pid:
            return False
        port = doc.get("metrics")
        worker.endpoint = WorkerEndpoint(worker.index, worker.proc.pid, f"http://127.0.0.1:{port}") if port else None
        worker.ready = True
        return True

    def start(self) -> None:
        """Start every worker and wait until each listens; raises GatewayError (all stopped) if one fails.
        From here on SIGTERM and SIGINT stop the gateway cleanly and SIGHUP reloads the workers."""
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_reload)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for index in range(self.count):
            self._spawn(index)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        waiting = set(self._workers)
        while waiting and not self._stopping:
            for index in sorted(waiting):
                worker = self._workers[index]
                if self._read_report(worker):
                    waiting.discard(index)
                elif worker.proc.poll() is not None:
                    self.stop()
                    raise GatewayError(f"worker {index} did not start (exit status {worker.proc.returncode}); "
                                       "its messages are above")
            if time.monotonic() > deadline:
                self.stop()
                raise GatewayError(f"the workers did not listen within {START_TIMEOUT_SECONDS:.0f} s")
            time.sleep(POLL_SECONDS / 4)

    def serve(self) -> None:
        """Watch the workers until SIGTERM or SIGINT (after `start`)."""
        try:
            while not self._stopping:
                time.sleep(POLL_SECONDS)
                # A stop signal that came during the sleep (systemd and Ctrl-C signal the workers at the same
                # time): their exits are the stop, not deaths to restart.
                if not self._stopping:
                    self._check()
        finally:
            self.stop()

    def _on_stop(self, signum: int, frame: object) -> None:
        self._stopping = True

    def _on_reload(self, signum: int, frame: object) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGHUP)
            except OSError:
                pass

    def _check(self) -> None:
        now = time.monotonic()
        for index, worker in list(self._workers.items()):
            if not worker.ready and worker.proc.poll() is None and index not in self._pending:
                self._read_report(worker)
            if worker.proc.poll() is None or index in self._pending:
                continue
            worker.ready, worker.endpoint = False, None
            lived = now - worker.started
            failures, pause = restart_pause(lived, worker.failures)
            log.error("classgate: worker %d (pid %d) stopped with status %s after %.0f s; starting it again%s",
                      index, worker.proc.pid, worker.proc.returncode, lived,
                      f" in {pause:.1f} s" if pause else "")
            worker.failures = failures
            self._pending[index] = now + pause
        for index, when in list(self._pending.items()):
            if now >= when and not self._stopping:
                del self._pending[index]
                self.restarts += 1
                self._spawn(index, self._workers[index].failures)

    def stop(self) -> None:
        """SIGTERM every worker, wait for them (bounded), kill what is left."""
        self._stopping = True
        alive = [w.proc for w in self._workers.values() if w.proc.poll() is None]
        for proc in alive:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for proc in alive:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


class _SupervisorCollector(Collector):
    """The supervisor's own series: how many workers should run, how many do, how often one was restarted."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor

    def collect(self) -> Iterator[Metric]:
        s = self._supervisor
        yield GaugeMetricFamily("classgate_workers", "Proxy worker processes the gateway runs (--workers).",
                                value=s.count)
        yield GaugeMetricFamily("classgate_workers_up", "Proxy workers running and listening now.",
                                value=s.ready_count())
        yield CounterMetricFamily("classgate_worker_restarts", "Proxy workers started again after they stopped.",
                                  value=s.restarts)
