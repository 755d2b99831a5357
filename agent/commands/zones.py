"""Times shown to admins are in the policy's timezone: one way to find it for every command."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def policy_zone(name: object) -> dt.tzinfo:
    """The zone named by a policy (`timezone:` key, as status files and /stats.json carry it); UTC if unknown."""
    try:
        return ZoneInfo(str(name)) if name else dt.UTC
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def local_time(ts: float, zone: dt.tzinfo) -> str:
    """`ts` (seconds since the epoch) as an admin reads it: 2026-12-02 09:30:00 +07."""
    return dt.datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d %H:%M:%S %Z")
