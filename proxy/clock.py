"""The filter's clock: real time, or a fixed instant injected by tests.

CLASSGATE_TEST_NOW="2026-11-23 09:00" (local time in the policy's time zone) pins the clock so the
end-to-end tests can prove schedule rules on a real proxy process. It is test-only: `classgate run`
has no option for it on purpose (an admin should never run a gateway on a fake clock), and the
proxy logs a warning at start when it is set.
"""

from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo

TEST_NOW_ENV = "CLASSGATE_TEST_NOW"


class ClockError(ValueError):
    """CLASSGATE_TEST_NOW is set but is not a date and time."""


def pinned_setting() -> str:
    """The raw CLASSGATE_TEST_NOW value ("" when unset); addons read it once, not per request."""
    return os.environ.get(TEST_NOW_ENV, "").strip()


def test_now(tz: ZoneInfo, raw: str | None = None) -> dt.datetime | None:
    """The pinned instant (aware, in `tz`) if CLASSGATE_TEST_NOW (or `raw`) is set, else None."""
    raw = pinned_setting() if raw is None else raw
    if not raw:
        return None
    try:
        pinned = dt.datetime.fromisoformat(raw)
    except ValueError as e:
        raise ClockError(f"{TEST_NOW_ENV}={raw!r} is not 'YYYY-MM-DD HH:MM': {e}") from None
    return pinned.replace(tzinfo=tz) if pinned.tzinfo is None else pinned.astimezone(tz)


def now(tz: ZoneInfo) -> dt.datetime:
    """The current local time in `tz` (or the pinned test instant)."""
    return test_now(tz) or dt.datetime.now(tz)
