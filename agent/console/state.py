"""What every view of one console shares, built once by `create_app`: one typed value, no globals."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from classgate.agent.console.lan import LanGate
from classgate.agent.console.policy_source import PolicySource
from classgate.agent.console.sessions import Sessions
from classgate.agent.console.settings import ConsoleSettings
from classgate.agent.console.throttle import LoginThrottle
from classgate.agent.console.today import today
from classgate.agent.console.usage import Usage, read_usage
from classgate.agent.teachers.accounts import Accounts
from classgate.agent.teachers.classroom import Classroom


@dataclass(frozen=True)
class ConsoleState:
    settings: ConsoleSettings
    accounts: Accounts
    sessions: Sessions
    throttle: LoginThrottle
    policies: PolicySource
    lan: LanGate
    clock: Callable[[], float] = time.time

    @classmethod
    def build(cls, settings: ConsoleSettings, *, clock: Callable[[], float] = time.time,
              monotonic: Callable[[], float] = time.monotonic) -> ConsoleState:
        policies = PolicySource(settings.state_dir, settings.policy_path, settings.overlay_path)
        return cls(settings, Accounts(settings.state_dir),
                   Sessions(idle_seconds=settings.idle_seconds, lifetime_seconds=settings.lifetime_seconds,
                            clock=clock),
                   LoginThrottle(clock=monotonic), policies, LanGate(policies.current), clock)

    def classroom(self) -> Classroom:
        """The actions API over the policy in force now (raises NoPolicyError while there is none)."""
        return Classroom(self.settings.state_dir, self.policies.require(), clock=self.clock)

    def usage(self) -> Usage | None:
        """Today's usage (agent/console/today.py), or None when the console was given no metrics address."""
        if self.settings.metrics is None:
            return None
        policy = self.policies.current()
        return today(read_usage(self.settings.metrics), self.settings.state_dir,
                     policy.timezone if policy is not None else dt.UTC, self.clock())
