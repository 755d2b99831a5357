"""The filter's clock: real time, or a fixed instant pinned by the end-to-end tests.

One `Clock` is made when the gateway is built and handed to every component that needs the time (the
gates, the block page); none of them reads the environment or the system clock on its own.

CLASSGATE_TEST_NOW="2026-11-23 09:00" (local time in the policy's zone) pins it so the tests can prove
schedule rules on a real proxy process. It is test-only: `classgate run` has no option for it on purpose
(an admin should never run a gateway on a fake clock), and the gateway warns at start when it is set.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

TEST_NOW_ENV = "CLASSGATE_TEST_NOW"


class ClockError(ValueError):
    """CLASSGATE_TEST_NOW is set but is not a date and time."""


@dataclass(frozen=True)
class Clock:
    pinned: dt.datetime | None = None  # naive: local time in the policy's zone; None: the real clock

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Clock:
        """The real clock, or the instant CLASSGATE_TEST_NOW pins; raises ClockError for a bad value."""
        raw = environ.get(TEST_NOW_ENV, "").strip()
        if not raw:
            return cls()
        try:
            return cls(dt.datetime.fromisoformat(raw))
        except ValueError as e:
            raise ClockError(f"{TEST_NOW_ENV}={raw!r} is not 'YYYY-MM-DD HH:MM': {e}") from None

    @property
    def is_pinned(self) -> bool:
        return self.pinned is not None

    def decision_time(self, tz: ZoneInfo) -> dt.datetime | None:
        """What to pass the engine as `at`: None for "now" (the engine keeps its own per-second memo)."""
        if self.pinned is None:
            return None
        return self.pinned.replace(tzinfo=tz) if self.pinned.tzinfo is None else self.pinned.astimezone(tz)

    def now(self, tz: ZoneInfo) -> dt.datetime:
        """The current local time in `tz` (or the pinned instant)."""
        return self.decision_time(tz) or dt.datetime.now(tz)


REAL_CLOCK = Clock()
