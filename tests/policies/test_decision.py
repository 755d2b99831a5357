"""make_decision, the one builder of a Decision: every field by name, in Decision's order, with the defaults
Decision declares; the result is a real Decision whose properties read the stored fields."""

from __future__ import annotations

from typing import Any

import pytest

from classgate.policies.decision import Decision, Match, error_decision, make_decision

HIT = ("gambling", "ut1/gambling", "casino.example")
FIELDS: dict[str, Any] = {
    "action": "block", "rule": "no-gambling", "tier": "locked", "group": "students", "categories": ("gambling",),
    "schedules": ("lessons",), "matched": (HIT,), "host": "casino.example", "url": "http://casino.example/",
}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (FIELDS, Decision("block", "no-gambling", "locked", "students", ("gambling",), ("lessons",), (HIT,),
                          "casino.example", "http://casino.example/", None, False)),
        ({**FIELDS, "needs_path": True}, Decision("block", "no-gambling", "locked", "students", ("gambling",),
                                                  ("lessons",), (HIT,), "casino.example", "http://casino.example/",
                                                  None, True)),
        ({**FIELDS, "action": "allow", "rule": None, "tier": "default", "categories": (), "matched": ()},
         Decision("allow", None, "default", "students", (), ("lessons",), (), "casino.example",
                  "http://casino.example/", None, False)),
        ({**FIELDS, "error": "malformed URL: x"}, Decision("block", "no-gambling", "locked", "students",
                                                           ("gambling",), ("lessons",), (HIT,), "casino.example",
                                                           "http://casino.example/", "malformed URL: x", False)),
    ],
)
def test_make_decision_fills_every_field_by_name(fields: dict[str, Any], expected: Decision) -> None:
    d = make_decision(**fields)
    assert type(d) is Decision
    assert tuple(d) == tuple(expected)
    assert d._asdict() == {**expected._asdict(), **fields}
    assert d.matched == tuple(Match._make(m) for m in fields["matched"])
    assert all(type(m) is Match for m in d.matched)
    assert d.blocked is (fields["action"] == "block")
    assert d.category == (fields["categories"] or ("uncategorized",))[0]


def test_make_decision_takes_keywords_only() -> None:
    with pytest.raises(TypeError):
        make_decision(*FIELDS.values())  # type: ignore[misc]
    with pytest.raises(TypeError):
        make_decision(**{k: v for k, v in FIELDS.items() if k != "host"})  # no field may be left out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("internal error: RuntimeError",),
         ("block", None, "error", "default", (), (), (), "", "", "internal error: RuntimeError", False)),
        (("malformed host: x", "students", "h", "u"),
         ("block", None, "error", "students", (), (), (), "h", "u", "malformed host: x", False)),
    ],
)
def test_error_decision(args: tuple[str, ...], expected: tuple[Any, ...]) -> None:
    d = error_decision(*args)
    assert type(d) is Decision and tuple(d) == expected and d.blocked
