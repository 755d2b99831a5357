""""Ask your teacher" codes: what they are made of, what a teacher's console reads back, the bounded table."""

from __future__ import annotations

import re

import pytest

from classgate.proxy.ask_code import AskCodes, AskRequest, code_of, normalise, shown, site_of

KEY = bytes(range(32))
CODE = re.compile(r"^[ABCDEFGHJKLMNPQRSTUVWXYZ23456789]{8}$")


@pytest.mark.parametrize(
    ("host", "site"),
    [
        ("www.example.com", "example.com"),
        ("m.facebook.com", "facebook.com"),
        ("www.bbc.co.uk", "bbc.co.uk"),
        ("vnexpress.net", "vnexpress.net"),
        ("10.0.0.9", "10.0.0.9"),  # an address is its own site
        ("[2001:db8::1]", "[2001:db8::1]"),
    ],
)
def test_site_of(host, site):
    assert site_of(host) == site


@pytest.mark.parametrize(
    ("domain", "group", "rule"),
    [("example.com", "students", "focus"), ("example.com", "students", None), ("a.test", "grade-10", "r")],
)
def test_a_code_reads_back_as_what_it_was_made_from(domain, group, rule):
    codes = AskCodes(KEY)
    code = codes.encode(domain, group, rule)
    assert CODE.match(code)
    assert codes.decode(code) == AskRequest(domain, group, rule)
    assert codes.decode(shown(code)) == codes.decode(code.lower()) == codes.decode(f" {code[:4]} {code[4:]} ")


def test_the_same_block_has_the_same_code_for_every_student():
    """Nothing of the device goes in: one code per site, group and rule (the table holds sites, not students)."""
    a, b = AskCodes(KEY), AskCodes(KEY)
    assert a.encode("example.com", "students", "focus") == b.encode("example.com", "students", "focus")
    assert a.encode("example.com", "students", "focus") == code_of(KEY, AskRequest("example.com", "students", "focus"))
    assert len(a) == 1


@pytest.mark.parametrize(
    "other",
    [
        AskRequest("example.org", "students", "focus"),
        AskRequest("example.com", "teachers", "focus"),
        AskRequest("example.com", "students", "harmful"),
        AskRequest("example.com", "students", None),
    ],
)
def test_each_part_changes_the_code(other):
    assert code_of(KEY, other) != code_of(KEY, AskRequest("example.com", "students", "focus"))


def test_another_gateway_key_gives_other_codes():
    request = AskRequest("example.com", "students", "focus")
    assert code_of(KEY, request) != code_of(bytes(32), request)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("ABCD-EFGH", "ABCDEFGH"),
        ("abcd efgh", "ABCDEFGH"),
        ("ABCDEFG", None),  # too short
        ("ABCDEFGHJ", None),  # too long
        ("ABCD-EFG0", None),  # 0 is not in the alphabet (no 0/O, 1/I)
        ("ABCD-EFGI", None),
        ("", None),
    ],
)
def test_normalise(typed, expected):
    assert normalise(typed) == expected


def test_unknown_and_malformed_codes_decode_to_none():
    codes = AskCodes(KEY)
    codes.encode("example.com", "students", "focus")
    assert codes.decode("ZZZZ-ZZZZ") is None
    assert codes.decode("not a code") is None


def test_the_table_is_bounded_and_keeps_the_latest():
    codes = AskCodes(KEY, capacity=3)
    made = [codes.encode(f"site{i}.test", "students", "r") for i in range(4)]
    assert len(codes) == 3
    assert codes.decode(made[0]) is None  # the oldest went first
    codes.encode("site1.test", "students", "r")  # shown again: the most recent now
    codes.encode("site9.test", "students", "r")
    assert codes.decode(made[1]) is not None and codes.decode(made[2]) is None


def test_capacity_must_be_positive():
    with pytest.raises(ValueError):
        AskCodes(KEY, capacity=0)
