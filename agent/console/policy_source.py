"""The policy the console bounds actions with: the gateway's, followed as it changes.

The gateway keeps each policy it loads in STATE/last-good (classgate.proxy.last_good); the console looks at
that copy's meta.json (one stat) at most every `CHECK_SECONDS` and compiles it again when it changed, so a
new group or a new cap shows in the console without a restart. With --policy the named file is followed the
same way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from classgate.agent.teachers.enforced import NoPolicyError, enforced_policy
from classgate.policies import Policy, PolicyError
from classgate.proxy.last_good import FOLDER

log = logging.getLogger(__name__)

CHECK_SECONDS: Final = 2.0


class PolicySource:
    def __init__(self, state_dir: Path, policy_path: Path | None = None, overlay_path: Path | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._state_dir = state_dir
        self._policy_path = policy_path
        self._overlay_path = overlay_path
        self._watched = policy_path if policy_path is not None else state_dir / FOLDER / "meta.json"
        self._clock = clock
        self._lock = threading.Lock()
        self._policy: Policy | None = None
        self._stamp: tuple[int, int] | None = None
        self._checked = float("-inf")

    def current(self) -> Policy | None:
        """The policy now (None while the gateway has never kept one and none was named)."""
        with self._lock:
            if self._clock() - self._checked >= CHECK_SECONDS:
                self._checked = self._clock()
                self._refresh()
            return self._policy

    def require(self) -> Policy:
        policy = self.current()
        if policy is None:
            raise NoPolicyError(f"no policy found in {self._state_dir}: start the gateway once with this "
                                "--state-dir, or give the console --policy")
        return policy

    def _refresh(self) -> None:
        try:
            st = self._watched.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        if stamp == self._stamp and self._policy is not None:
            return
        try:
            self._policy = enforced_policy(self._state_dir, self._policy_path, self._overlay_path)
            self._stamp = stamp
        except (PolicyError, NoPolicyError) as exc:
            # The policy read before stays: a torn copy must not leave teachers without their groups.
            log.error("the console keeps its policy: %s", exc)
