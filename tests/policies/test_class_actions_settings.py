"""The `teachers:` key (the cap on a class action's duration): YAML in, setting or `line:col: message` out."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from classgate.policies.document import read_document
from classgate.policies.errors import PolicyError
from classgate.policies.teacher_settings import format_duration, parse_duration

HEAD = "classgate: 1\nname: t\n"
OVERLAY_HEAD = "classgate: 1\noverlay: true\n"
H = dt.timedelta(hours=1)
M = dt.timedelta(minutes=1)


@pytest.mark.parametrize(
    ("text", "duration"),
    [("45m", 45 * M), ("2h", 2 * H), ("1h30m", 90 * M), ("90m", 90 * M), (" 10m ", 10 * M)],
)
def test_parse_duration(text: str, duration: dt.timedelta) -> None:
    assert parse_duration(text) == duration
    assert parse_duration(format_duration(duration)) == duration


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "is not a duration"), ("45", "is not a duration"), ("2 h", "is not a duration"),
     ("1d", "is not a duration"), ("0m", "no time at all"), ("0h0m", "no time at all")],
)
def test_parse_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


@pytest.mark.parametrize(
    ("department", "overlay", "cap"),
    [
        ("", None, 2 * H),  # the type's default
        ("teachers: {max_duration: 45m}\n", None, 45 * M),
        ("teachers: {max_duration: 1h30m}\n", "teachers: {max_duration: 45m}\n", 45 * M),  # a school lowers it
        ("", "teachers: {max_duration: 4h}\n", 4 * H),  # no Department cap: the school's own
        ("teachers: {max_duration: 2h}\n", "teachers: {}\n", 2 * H),
    ],
)
def test_cap(tmp_path: Path, department: str, overlay: str | None, cap: dt.timedelta) -> None:
    (tmp_path / "p.yaml").write_text(HEAD + department, encoding="utf-8")
    school = None
    if overlay is not None:
        school = tmp_path / "o.yaml"
        school.write_text(OVERLAY_HEAD + overlay, encoding="utf-8")
    assert read_document(tmp_path / "p.yaml", school).teachers.max_duration == cap


@pytest.mark.parametrize(
    ("department", "overlay", "expected"),
    [
        ("teachers: {max_duration: 2 hours}\n", None,
         "p.yaml:3:26: '2 hours' is not valid here; write a duration such as 45m, 2h or 1h30m"),
        ("teachers: {max_duration: 0m}\n", None, "p.yaml:3:26: teachers.max_duration: '0m' is no time at all"),
        ("teachers: {max_duration: 25h}\n", None, "p.yaml:3:26: teachers.max_duration: 25h is longer than 24h"),
        ("teachers: {max_time: 2h}\n", None, "p.yaml:3:12: unknown key 'max_time' in teachers; did you mean 'max_duration'?"),
        ("teachers: {max_duration: 1h}\n", "teachers: {max_duration: 2h}\n",
         ("o.yaml:3:26: teachers.max_duration: the Department caps teacher actions at 1h; a school may lower the "
          "cap, not raise it to 2h")),
    ],
)
def test_errors(tmp_path: Path, department: str, overlay: str | None, expected: str) -> None:
    (tmp_path / "p.yaml").write_text(HEAD + department, encoding="utf-8")
    school = None
    if overlay is not None:
        school = tmp_path / "o.yaml"
        school.write_text(OVERLAY_HEAD + overlay, encoding="utf-8")
    with pytest.raises(PolicyError) as err:
        read_document(tmp_path / "p.yaml", school)
    messages = [f"{Path(p.file).name}:{p.line}:{p.col}: {p.message}" for p in err.value.problems]
    assert any(m.startswith(expected) for m in messages), messages
