"""Today's figures for the admin page: the gateway's counters now, less what they were at local midnight.

The gateway's counters run from its start (Prometheus counters); an admin asks about today. So the console
keeps the counters' values as they were when the day began (`<state>/console/usage-day.json`: counts per
category x group x action, aggregate like /metrics, never a device or a site) and shows the difference. The
console takes that baseline within a minute of local midnight (a background look, see server.py); a gateway
that (re)started today needs none (all it counted is today's). Started after midnight, the console takes the
baseline on its first look and says from when the figures run. Top sites stay the gateway's since its start:
the k-anonymous top-N of /stats.json cannot be subtracted.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from classgate.agent.console.usage import RequestKey, Usage, with_counts
from classgate.policies.atomicfile import atomic_write

log = logging.getLogger(__name__)

FILE: Final = Path("console") / "usage-day.json"
_SEP: Final = "\x1f"


@dataclass(frozen=True)
class DayBaseline:
    day: str  # the local date (ISO) the baseline is for
    gateway_since: float  # the gateway's start the counts belong to: another start makes them void
    taken_at: float  # when the figures run from (local midnight, the gateway's start today, or later)
    counts: dict[RequestKey, int]


def today(usage: Usage, state_dir: Path, zone: dt.tzinfo, now: float) -> Usage:
    """`usage` reduced to today's requests (`figures_from` says from when); keeps the baseline up to date."""
    if usage.error or usage.since is None:
        return usage
    local = dt.datetime.fromtimestamp(now, zone)
    midnight = dt.datetime.combine(local.date(), dt.time(0), tzinfo=zone).timestamp()
    baseline = _read(state_dir / FILE)
    if baseline is None or baseline.day != local.date().isoformat() or baseline.gateway_since != usage.since:
        if usage.since >= midnight:
            baseline = DayBaseline(local.date().isoformat(), usage.since, usage.since, {})  # all of it is today's
        else:
            baseline = DayBaseline(local.date().isoformat(), usage.since, now, dict(usage.request_counts))
        _write(state_dir / FILE, baseline)
    counts = {key: n - baseline.counts.get(key, 0) for key, n in usage.request_counts.items()}
    return replace(with_counts(usage, {k: n for k, n in counts.items() if n > 0}), figures_from=baseline.taken_at)


def _read(path: Path) -> DayBaseline | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        counts = {tuple(k.split(_SEP)): int(v) for k, v in data["counts"].items()}
        return DayBaseline(str(data["day"]), float(data["gateway_since"]), float(data["taken_at"]),
                           {k: v for k, v in counts.items() if len(k) == 3})
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("%s is unreadable (%s): today's figures start again from now", path, exc)
        return None


def _write(path: Path, baseline: DayBaseline) -> None:
    data = {"day": baseline.day, "gateway_since": baseline.gateway_since, "taken_at": baseline.taken_at,
            "counts": {_SEP.join(k): v for k, v in sorted(baseline.counts.items())}}
    try:
        atomic_write(path, (json.dumps(data, indent=1) + "\n").encode(), mode=0o600)
    except OSError as exc:
        log.warning("cannot keep today's baseline in %s: %s", path, exc)
