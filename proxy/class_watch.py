"""The class actions in force, as every gate applies them: the store's file, re-read when it changes.

Each worker process keeps the last actions it read and looks at the file's identity (inode, size, mtime) at
most once per `check_every` seconds: a teacher's action reaches every worker within about a second, with one
`stat` per second on the hot path and no recompile. A file that cannot be read keeps the actions read before
(logged once per change): a torn hand edit must not lift a pause. Expiry needs no re-read: every decision
compares each action's time box with the decision time.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from classgate.policies import Decision, Policy
from classgate.policies.class_actions import ClassAction, ClassActions
from classgate.proxy.class_store import FILE, ClassStoreError, read_actions

log = logging.getLogger(__name__)

CHECK_EVERY = 1.0  # seconds between looks at the file: the bound on how late an action takes effect
_Stamp = tuple[int, int, int] | None


class ClassTier:
    """The teacher tier of the gates' decisions (no state dir: no actions, every decision unchanged)."""

    def __init__(self, state_dir: Path | None = None, *, check_every: float = CHECK_EVERY,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(state_dir) / FILE if state_dir is not None else None
        self.check_every = check_every
        self._monotonic = monotonic
        self._checked = float("-inf")
        self._stamp: _Stamp = None
        self._actions = ClassActions()

    def current(self) -> ClassActions:
        """The actions last read, after a look at the file if the last look is `check_every` old."""
        if self.path is None:
            return self._actions
        now = self._monotonic()
        if now - self._checked >= self.check_every:
            self._checked = now
            self._refresh(self.path)
        return self._actions

    def named(self, rule: str | None) -> ClassAction | None:
        """The action a decision names (`Decision.rule` of tier "teacher"), for the block page."""
        if not rule:
            return None
        return next((a for a in self.current() if a.rule == rule), None)

    def in_force(self, now: float) -> list[tuple[str, str]]:
        """(group, kind) of every action in force at `now` (unix time): what the metrics gauge counts."""
        return [(a.group, a.kind) for a in self.current().active(now)]

    def decide(self, policy: Policy, url: str, client: str | None, at: dt.datetime | None) -> Decision:
        """`policy.decide`, then the class actions in force at `at` (None: now)."""
        return self._apply(policy, policy.decide(url, client=client, at=at), at)

    def decide_host(self, policy: Policy, host: str, client: str | None, at: dt.datetime | None) -> Decision:
        """`policy.decide_host`, then the class actions in force at `at` (None: now)."""
        return self._apply(policy, policy.decide_host(host, client=client, at=at), at)

    def _apply(self, policy: Policy, decision: Decision, at: dt.datetime | None) -> Decision:
        actions = self.current()
        if not len(actions):
            return decision
        return actions.apply(policy, decision, at.timestamp() if at is not None else time.time())

    def _refresh(self, path: Path) -> None:
        try:
            st = os.stat(path)
            stamp: _Stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            stamp = None
        except OSError as exc:
            log.error("cannot look at the class actions file %s (keeping the actions read before): %s", path, exc)
            return
        if stamp == self._stamp:
            return
        try:
            self._actions = read_actions(path) if stamp is not None else ClassActions()
        except ClassStoreError as exc:
            log.error("class actions not re-read (keeping the actions read before): %s", exc)
        self._stamp = stamp
