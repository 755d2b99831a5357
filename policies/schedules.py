"""Schedules: named sets of time windows (days of week and/or dates, and a time span) in local time."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping

from classgate.policies.errors import Position, Problem
from classgate.policies.model import Origin, Schedule, TimeWindow
from classgate.policies.yamlsource import Val

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_WORDS = {"daily": frozenset(range(7)), "weekdays": frozenset(range(5)), "weekends": frozenset({5, 6})}
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
END_OF_DAY = dt.time(23, 59, 59, 999999)


def _day(word: str) -> int:
    w = word.strip().lower()
    if w in DAY_NAMES:
        return DAY_NAMES.index(w)
    if w in _FULL_DAY_NAMES:
        return _FULL_DAY_NAMES.index(w)
    raise ValueError(f"unknown day {word.strip()!r} (use {', '.join(DAY_NAMES)}, a range like mon-fri, or daily)")


def parse_days(text: str) -> frozenset[int]:
    """`mon-fri`, `sat,sun`, `mon`, `daily`, `weekdays`, `weekends` -> weekday numbers (0 = Monday)."""
    days: set[int] = set()
    for part in text.split(","):
        word = part.strip().lower()
        if not word:
            raise ValueError(f"empty day in {text!r}")
        if word in _DAY_WORDS:
            days |= _DAY_WORDS[word]
        elif "-" in word:
            first, _, last = word.partition("-")
            a, b = _day(first), _day(last)
            # fri-mon wraps over the weekend, as people read it.
            days.update((a + i) % 7 for i in range((b - a) % 7 + 1))
        else:
            days.add(_day(word))
    return frozenset(days)


def parse_time(text: str, *, end: bool = False) -> dt.time:
    """`HH:MM` (24-hour); `24:00` is accepted as the end of a window only."""
    m = _TIME.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a time; write HH:MM in quotes, e.g. \"07:30\"")
    hour, minute = int(m.group(1)), int(m.group(2))
    if end and (hour, minute) == (24, 0):
        return END_OF_DAY
    if hour > 23 or minute > 59:
        raise ValueError(f"{text!r} is not a time of day (00:00 to 23:59{', or 24:00' if end else ''})")
    return dt.time(hour, minute)


def parse_dates(text: str) -> tuple[dt.date, dt.date]:
    """`YYYY-MM-DD` or `YYYY-MM-DD..YYYY-MM-DD` (inclusive)."""
    first, sep, last = text.strip().partition("..")
    try:
        a = dt.date.fromisoformat(first.strip())
        b = dt.date.fromisoformat(last.strip()) if sep else a
    except ValueError:
        raise ValueError(f"{text!r} is not a date or date range; write 2026-12-14 or "
                         "2026-12-14..2026-12-18") from None
    if b < a:
        raise ValueError(f"date range {text!r} ends before it starts")
    return (a, b)


def _read_window(node: Val, name: str, problems: list[Problem]) -> TimeWindow | None:
    fields: dict[str, Val] = node.value
    ok = True
    days: frozenset[int] | None = None
    dates: tuple[dt.date, dt.date] | None = None
    start, end = dt.time(0, 0), END_OF_DAY

    def fail(pos: Position, message: str) -> None:
        nonlocal ok
        ok = False
        problems.append(Problem.at(pos, f"schedule {name!r}: {message}"))

    if "days" in fields:
        days_node = fields["days"]
        items = days_node.value if isinstance(days_node.value, list) else [days_node]
        collected: set[int] = set()
        for item in items:
            try:
                collected |= parse_days(item.value)
            except ValueError as exc:
                fail(item.pos, str(exc))
        days = frozenset(collected)
    if "dates" in fields:
        try:
            dates = parse_dates(fields["dates"].value)
        except ValueError as exc:
            fail(fields["dates"].pos, str(exc))
    if "from" in fields:
        try:
            start = parse_time(fields["from"].value)
        except ValueError as exc:
            fail(fields["from"].pos, str(exc))
    if "to" in fields:
        try:
            end = parse_time(fields["to"].value, end=True)
        except ValueError as exc:
            fail(fields["to"].pos, str(exc))
    if ok and start >= end:
        fail(fields.get("to", node).pos, f"a window must start before it ends ({start:%H:%M} is not "
                                         f"before {'24:00' if end == END_OF_DAY else f'{end:%H:%M}'}); "
                                         "split a window that crosses midnight in two")
    if not ok:
        return None
    return TimeWindow(days=days, dates=dates, start=start, end=end, pos=node.pos)


def read_schedules(node: Val | None, origin: Origin, problems: list[Problem]) -> dict[str, Schedule]:
    """The `schedules:` section (already shape-checked) as Schedule objects."""
    schedules: dict[str, Schedule] = {}
    if node is None:
        return schedules
    for name, body in node.value.items():
        windows = [_read_window(item, name, problems) for item in body.value]
        if not body.value:
            problems.append(Problem.at(body.where, f"schedule {name!r} has no time windows"))
        schedules[name] = Schedule(name=name, windows=tuple(w for w in windows if w is not None),
                                   origin=origin, pos=body.key_pos)
    return schedules


def _in_window(window: TimeWindow, weekday: int, date: dt.date, t: dt.time) -> bool:
    if window.days is not None and weekday not in window.days:
        return False
    if window.dates is not None and not (window.dates[0] <= date <= window.dates[1]):
        return False
    # Windows are half-open [from, to); "24:00" (END_OF_DAY) closes the day inclusively.
    return window.start <= t and (t < window.end or window.end == END_OF_DAY)


def window_active(window: TimeWindow, local_dt: dt.datetime) -> bool:
    return _in_window(window, local_dt.weekday(), local_dt.date(), local_dt.time())


def active_until(schedules: Iterable[Schedule], local_dt: dt.datetime) -> dt.datetime | None:
    """When the latest-ending window active at `local_dt` among `schedules` ends (local time), or None when
    none is active. A window that ends at 24:00 ends at the next midnight."""
    weekday, date, t = local_dt.weekday(), local_dt.date(), local_dt.time()
    ends = [w.end for s in schedules for w in s.windows if _in_window(w, weekday, date, t)]
    if not ends:
        return None
    end = max(ends)
    if end == END_OF_DAY:
        return dt.datetime.combine(date + dt.timedelta(days=1), dt.time(0, 0), local_dt.tzinfo)
    return dt.datetime.combine(date, end, local_dt.tzinfo)


def active_schedules(schedules: Mapping[str, Schedule] | Iterable[Schedule],
                     local_dt: dt.datetime) -> tuple[str, ...]:
    """Names of the schedules active at `local_dt` (wall-clock time in the policy's time zone), in order."""
    items = schedules.values() if isinstance(schedules, Mapping) else schedules
    # Called per decision (the engine may cache per minute): take the clock apart once, not per window.
    weekday, date, t = local_dt.weekday(), local_dt.date(), local_dt.time()
    return tuple(s.name for s in items if any(_in_window(w, weekday, date, t) for w in s.windows))
