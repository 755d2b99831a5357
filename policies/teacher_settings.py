"""The `teachers:` section: how long a teacher's class action may last at most (policies/class_actions.py).

The Department may set a cap for every school; a school's overlay may set its own, and may only lower the
Department's. Durations are written `45m`, `2h`, `1h30m`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from typing import Final

from classgate.policies.errors import Problem
from classgate.policies.model import TeacherSettings
from classgate.policies.yamlsource import Val

DURATION_PATTERN: Final = r"(?:\d+h)?(?:\d+m)?"
# A class action lasts a lesson, a morning at most: a cap above a day is a mistake, not a policy.
LONGEST_CAP: Final = dt.timedelta(hours=24)


def parse_duration(text: str) -> dt.timedelta:
    """`45m`, `2h`, `1h30m` as a timedelta; raises ValueError saying how to write one."""
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?", text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"{text!r} is not a duration; write minutes or hours such as 45m, 2h or 1h30m")
    hours, minutes = (int(g) if g else 0 for g in match.groups())
    duration = dt.timedelta(hours=hours, minutes=minutes)
    if duration <= dt.timedelta(0):
        raise ValueError(f"{text!r} is no time at all; a duration is at least 1m")
    return duration


def format_duration(duration: dt.timedelta) -> str:
    """The spelling parse_duration reads (whole minutes)."""
    minutes = int(duration.total_seconds()) // 60
    hours, minutes = divmod(minutes, 60)
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes or not hours else "")


def read_teachers(node: Val | None, problems: list[Problem], base: TeacherSettings | None = None,
                  *, overlay: bool = False) -> TeacherSettings:
    """The section (already shape-checked) over `base`; an overlay raising the Department's cap is an error."""
    base = base or TeacherSettings()
    if node is None or "max_duration" not in node.value:
        return base
    item = node.value["max_duration"]
    try:
        cap = parse_duration(item.value)
    except ValueError as exc:
        problems.append(Problem.at(item.pos, f"teachers.max_duration: {exc}"))
        return base
    if cap > LONGEST_CAP:
        problems.append(Problem.at(item.pos, f"teachers.max_duration: {item.value} is longer than "
                                             f"{format_duration(LONGEST_CAP)}; a class action lasts a lesson"))
        return base
    if overlay and base.set_by_department and cap > base.max_duration:
        problems.append(Problem.at(item.pos, "teachers.max_duration: the Department caps teacher actions at "
                                             f"{format_duration(base.max_duration)}; a school may lower the cap, "
                                             f"not raise it to {item.value}"))
        return base
    return replace(base, max_duration=cap, set_by_department=base.set_by_department or not overlay)
