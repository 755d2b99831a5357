"""The current policy: one reference, swapped atomically when a new policy compiles.

Every flow reads `holder.policy` once and keeps that object for its whole life, so a reload never
changes the rules under a request in flight. Compiling happens in a worker thread
(asyncio.to_thread); only the final assignment runs on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, Protocol, get_args

from classgate.policies import Policy, PolicyError, Problem, load_policy
from classgate.proxy.last_good import KeptPolicy, LastGood
from classgate.proxy.policy_files import Snapshot, as_loaded, policy_files, snapshot
from classgate.proxy.policy_status import FallbackStatus, PolicyStatus, RejectedStatus, bounded, write_status
from classgate.proxy.precompile import precompile

log = logging.getLogger(__name__)

# Where the policy in force came from: a file the admin names, or a verified Department bundle.
PolicySource = Literal["file", "sync"]
POLICY_SOURCES: Final[tuple[PolicySource, ...]] = get_args(PolicySource)


class PolicyMetrics(Protocol):
    """What the holder reports to metrics (classgate.metrics.Metrics)."""

    def record_reload(self, ok: bool) -> None: ...

    def set_policy(self, version: str, loaded_at: float, categories: Iterable[str], groups: Iterable[str],
                   source: str = "file", timezone: str = "UTC", fallback: bool = False) -> None: ...


@dataclass(frozen=True)
class Fallback:
    """Why the gateway enforces the last good policy, and which one it is."""

    problems: list[str]  # what is wrong with the configured policy, file:line:col first
    kept: KeptPolicy


class PolicyHolder:
    """Holds the running policy and knows how to reload it from its files."""

    def __init__(
        self,
        policy_path: Path | None = None,
        overlay_path: Path | None = None,
        cache_dir: Path | None = None,
        metrics: PolicyMetrics | None = None,
        source: PolicySource = "file",
        isolate_compile: bool = True,
        last_good: LastGood | None = None,
        status_dir: Path | None = None,
    ) -> None:
        self.policy_path = Path(policy_path) if policy_path else None
        self.overlay_path = Path(overlay_path) if overlay_path else None
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.metrics = metrics
        self.source = source
        # Reloads compile in a child process first (proxy/precompile.py) when there is a cache to
        # hand the result over in; the event loop then only waits for a short cached load.
        self.isolate_compile = isolate_compile
        # Where each policy that loads is kept, and what a start falls back to (proxy/last_good.py).
        self.last_good = last_good
        self.fallback: Fallback | None = None  # set while enforcing the last good policy instead
        # Where policy.json says what is enforced (proxy/policy_status.py); None: not written (tests, the bench).
        self.status_dir = Path(status_dir) if status_dir else None
        self.rejected: RejectedStatus | None = None
        # The running policy's files as they were when it was read (proxy/policy_files.py): the watcher's and
        # a starting worker's baseline. Empty until a policy is loaded from files.
        self.files_as_loaded: Snapshot = ()
        self.policy: Policy | None = None
        self.loaded_at = 0.0
        self.generation = 0  # bumped on every successful swap; the file watcher compares it
        self._lock = asyncio.Lock()
        self._listeners: list[Callable[[Policy], None]] = []
        # flow -> the policy it started under; weak, so finished flows take no memory.
        self._pinned: weakref.WeakKeyDictionary[object, Policy] = weakref.WeakKeyDictionary()

    def pin(self, flow: object) -> Policy | None:
        """The policy `flow` is decided under: the current one at its first call, then always that."""
        policy = self._pinned.get(flow)
        if policy is None:
            policy = self.policy
            if policy is not None:
                self._pinned[flow] = policy
        return policy

    def on_swap(self, listener: Callable[[Policy], None]) -> None:
        """Call `listener(policy)` on the event loop after each successful (re)load."""
        self._listeners.append(listener)

    def load(self) -> Policy:
        """Load synchronously at start-up. A policy that does not validate falls back to the last good one (said
        loudly, in the log, `fallback`, the metrics and the state dir's policy.json); raises PolicyError only
        when there is none."""
        if self.policy_path is None:
            raise PolicyError([Problem("<policy>", 0, 0, "no policy file given")])
        before_reading = snapshot(policy_files(self.policy_path, self.overlay_path, None))
        try:
            policy = load_policy(self.policy_path, overlay=self.overlay_path, cache_dir=self.cache_dir)
        except (PolicyError, OSError) as e:
            problems = [str(p) for p in e.problems] if isinstance(e, PolicyError) else [f"{e}"]
            kept = self.last_good.load() if self.last_good is not None else None
            if kept is None:
                raise
            policy, info = kept
            self.fallback = Fallback(problems, info)
            log.error(
                "the policy %s cannot be used; enforcing the LAST GOOD policy %s (version %s, kept %s) until it "
                "is fixed:\n  %s", self.policy_path, info.policy_path, info.version,
                time.strftime("%Y-%m-%d %H:%M", time.localtime(info.saved_at)), "\n  ".join(problems))
            self._swap(policy, reload=False)
            self.files_as_loaded = as_loaded(before_reading, snapshot(self.watched_paths()))
            return policy
        self._swap(policy, reload=False)
        self.files_as_loaded = as_loaded(before_reading, snapshot(self.watched_paths()))
        return policy

    def watched_paths(self) -> list[Path]:
        """The policy file, the overlay and every list file the running policy was compiled from."""
        return policy_files(self.policy_path, self.overlay_path, self.policy)

    async def reload(self, policy_path: Path | None = None, overlay_path: Path | None = None) -> bool:
        """Compile off the event loop and swap on success; on failure keep the running policy."""
        async with self._lock:  # one compile at a time: a burst of edits must not race
            path = Path(policy_path) if policy_path else self.policy_path
            overlay = Path(overlay_path) if overlay_path else self.overlay_path
            if path is None:
                log.error("policy reload skipped: no policy file configured")
                return False
            started = time.perf_counter()
            before_reading = await asyncio.to_thread(snapshot, policy_files(path, overlay, None))
            try:
                if self.isolate_compile and self.cache_dir is not None:
                    problems = await precompile(path, overlay, self.cache_dir)
                    if problems is not None:
                        self._rejected(path, problems)
                        return False
                policy = await asyncio.to_thread(load_policy, path, overlay=overlay, cache_dir=self.cache_dir)
            except PolicyError as e:
                self._rejected(path, [str(p) for p in e.problems])
                return False
            except Exception as e:  # a bug in the compiler must not take the gateway down
                log.exception("policy reload of %s failed unexpectedly; keeping the running policy", path)
                self._rejected(path, [f"{type(e).__name__}: {e}"])
                return False
            if policy_path is not None and Path(policy_path) != self.policy_path:
                self.source = "sync"  # only the Department sync hands over a new policy file
            self.policy_path, self.overlay_path = path, overlay
            old = self.policy
            after_loading = await asyncio.to_thread(snapshot, policy_files(path, overlay, policy))
            self._swap(policy)
            self.files_as_loaded = as_loaded(before_reading, after_loading)
            log.info(
                "policy reloaded: %s version %s (was %s) in %.2f s",
                policy.name,
                policy.version,
                old.version if old else "-",
                time.perf_counter() - started,
            )
            return True

    def _rejected(self, path: Path, problems: list[str]) -> None:
        self.rejected = RejectedStatus(str(path), time.time(), bounded(problems))
        self._write_status()
        log.error(
            "new policy %s rejected; still enforcing %s:\n  %s",
            path,
            self.policy.version if self.policy else "nothing",
            "\n  ".join(problems) or "(no details)",
        )
        if self.metrics is not None:
            self.metrics.record_reload(False)

    def _swap(self, policy: Policy, reload: bool = True) -> None:
        if reload:
            self.fallback = None  # a policy from the files again
        if self.fallback is None and self.last_good is not None and self.policy_path is not None:
            self.last_good.save(policy, self.policy_path, self.overlay_path, self.source)
        self.policy = policy  # the atomic part: one reference assignment
        self.loaded_at = time.time()
        self.generation += 1
        self.rejected = None
        self._write_status()
        if self.metrics is not None:
            if reload:
                self.metrics.record_reload(True)
            self.metrics.set_policy(
                policy.version, self.loaded_at, policy.categories, policy.groups, self.source,
                timezone=policy.timezone.key, fallback=self.fallback is not None,
            )
        for listener in self._listeners:
            listener(policy)

    def _write_status(self) -> None:
        policy = self.policy
        if self.status_dir is None or policy is None:
            return
        fallback = None
        if self.fallback is not None:
            fallback = FallbackStatus(bounded(self.fallback.problems), self.fallback.kept.version,
                                      self.fallback.kept.saved_at)
        write_status(self.status_dir, PolicyStatus(
            policy.name, policy.version, self.source, str(self.policy_path or ""),
            str(self.overlay_path) if self.overlay_path else None, self.loaded_at, policy.timezone.key, fallback,
            self.rejected))
