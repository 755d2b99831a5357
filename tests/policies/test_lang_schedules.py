"""Schedules: day/time/date forms and which schedules are active at a local time."""

from __future__ import annotations

import datetime as dt

import pytest

from classgate.policies.model import Schedule, TimeWindow
from classgate.policies.schedules import END_OF_DAY, active_schedules, parse_dates, parse_days, parse_time


@pytest.mark.parametrize(("text", "days"), [
    ("mon-fri", {0, 1, 2, 3, 4}),
    ("sat,sun", {5, 6}),
    ("mon", {0}),
    ("Monday", {0}),
    ("daily", set(range(7))),
    ("weekdays", {0, 1, 2, 3, 4}),
    ("weekends", {5, 6}),
    ("fri-mon", {4, 5, 6, 0}),          # wraps over the weekend
    ("mon-wed, fri", {0, 1, 2, 4}),
])
def test_parse_days(text, days):
    assert parse_days(text) == frozenset(days)


@pytest.mark.parametrize(("text", "message"), [
    ("mon-fry", "unknown day 'fry'"),
    ("lundi", "unknown day 'lundi'"),
    ("mon,,tue", "empty day"),
])
def test_parse_days_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_days(text)


@pytest.mark.parametrize(("text", "end", "expected"), [
    ("07:00", False, dt.time(7, 0)),
    ("7:05", False, dt.time(7, 5)),
    ("23:59", False, dt.time(23, 59)),
    ("24:00", True, END_OF_DAY),
    ("00:00", True, dt.time(0, 0)),
])
def test_parse_time(text, end, expected):
    assert parse_time(text, end=end) == expected


@pytest.mark.parametrize(("text", "end", "message"), [
    ("24:00", False, "not a time of day"),
    ("25:00", True, "not a time of day"),
    ("12:60", False, "not a time of day"),
    ("7h30", False, "not a time"),
    ("", False, "not a time"),
])
def test_parse_time_errors(text, end, message):
    with pytest.raises(ValueError, match=message):
        parse_time(text, end=end)


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-12-14", (dt.date(2026, 12, 14), dt.date(2026, 12, 14))),
    ("2026-12-14..2026-12-18", (dt.date(2026, 12, 14), dt.date(2026, 12, 18))),
    ("2026-12-31 .. 2027-01-02", (dt.date(2026, 12, 31), dt.date(2027, 1, 2))),
])
def test_parse_dates(text, expected):
    assert parse_dates(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("2026-12-18..2026-12-14", "ends before it starts"),
    ("2026-13-01", "not a date"),
    ("14/12/2026", "not a date"),
])
def test_parse_dates_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_dates(text)


WEEKDAYS = frozenset(range(5))
SCHEDULES = {
    "class_hours": Schedule("class_hours", (
        TimeWindow(days=WEEKDAYS, start=dt.time(7), end=dt.time(11, 30)),
        TimeWindow(days=WEEKDAYS, start=dt.time(13, 30), end=dt.time(17)),
    )),
    "exam_week": Schedule("exam_week", (
        TimeWindow(dates=(dt.date(2026, 12, 14), dt.date(2026, 12, 18)), start=dt.time(7), end=dt.time(17)),
    )),
    "evening": Schedule("evening", (TimeWindow(start=dt.time(18), end=END_OF_DAY),)),
}


@pytest.mark.parametrize(("local", "active"), [
    ("2026-11-23 09:00", ("class_hours",)),                 # Monday
    ("2026-11-23 07:00", ("class_hours",)),                 # the start is inside
    ("2026-11-23 11:30", ()),                               # the end is outside
    ("2026-11-23 11:29", ("class_hours",)),
    ("2026-11-23 12:00", ()),
    ("2026-11-23 13:30", ("class_hours",)),
    ("2026-11-28 09:00", ()),                               # Saturday
    ("2026-12-14 09:00", ("class_hours", "exam_week")),     # Monday of exam week
    ("2026-12-19 09:00", ()),                               # Saturday after exam week
    ("2026-12-18 16:59", ("class_hours", "exam_week")),
    ("2026-11-23 23:59", ("evening",)),
    ("2026-11-23 18:00", ("evening",)),
    ("2026-11-24 00:00", ()),
])
def test_active_schedules(local, active):
    at = dt.datetime.strptime(local, "%Y-%m-%d %H:%M")
    assert active_schedules(SCHEDULES, at) == active
    assert active_schedules(list(SCHEDULES.values()), at) == active


def test_active_schedules_end_of_day_is_inclusive():
    assert active_schedules(SCHEDULES, dt.datetime(2026, 11, 23, 23, 59, 59, 999999)) == ("evening",)


def test_aware_datetimes_use_their_wall_clock():
    from zoneinfo import ZoneInfo

    at = dt.datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
    assert active_schedules(SCHEDULES, at) == ("class_hours",)
