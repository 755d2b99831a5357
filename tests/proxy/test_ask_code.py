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


# -- the table the console reads (another process than the worker that showed the code) --------------------

def test_the_shared_table_gives_back_what_a_worker_put(tmp_path):
    from classgate.proxy.ask_code import SharedAskTable

    path = tmp_path / "asks"
    worker = SharedAskTable(path, capacity=64)
    console = SharedAskTable(path, capacity=64, create=False)
    codes = AskCodes(b"k" * 32, shared=worker)
    code = codes.encode("casino.test", "students", "gambling")
    assert console.get(code) == AskRequest("casino.test", "students", "gambling")
    assert console.get("AAAAAAAA") is None  # never shown
    assert oct(path.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(("case", "domain"), [
    ("an IDN site, kept as UTF-8", "trường.vn"),
    ("a 253-byte name", ".".join(["a" * 62] * 4)[:253]),
])
def test_the_shared_table_keeps_any_real_name(tmp_path, case, domain):
    from classgate.proxy.ask_code import SharedAskTable

    table = SharedAskTable(tmp_path / "asks", capacity=8)
    code = AskCodes(b"k" * 32, shared=table).encode(domain, "students", None)
    assert SharedAskTable(tmp_path / "asks", capacity=8, create=False).get(code) == AskRequest(domain, "students", None)


def test_the_shared_table_stays_its_size_and_a_newer_code_takes_the_slot(tmp_path):
    from classgate.proxy.ask_code import SharedAskTable

    table = SharedAskTable(tmp_path / "asks", capacity=4)
    codes = AskCodes(b"k" * 32, shared=table)
    shown = [codes.encode(f"site{i}.test", "students", None) for i in range(40)]
    assert (tmp_path / "asks").stat().st_size == 4 * 512
    remembered = [c for c in shown if table.get(c) is not None]
    assert 1 <= len(remembered) <= 4 and shown[-1] in remembered


def test_a_reader_finds_no_table_before_a_gateway_made_one(tmp_path):
    from classgate.proxy.ask_code import shared_ask_table

    shm = tmp_path / "shm"
    shm.mkdir()
    assert shared_ask_table(tmp_path / "state", create=False, shm=shm) is None
    assert shared_ask_table(tmp_path / "state", shm=shm) is not None
    assert shared_ask_table(tmp_path / "state", create=False, shm=shm) is not None


def test_a_table_open_to_other_users_is_refused(tmp_path):
    """/dev/shm is every local user's: a table file someone opened up is not used (nor read back)."""
    from classgate.proxy.ask_code import SharedAskTable

    path = tmp_path / "asks"
    SharedAskTable(path, capacity=4).close()
    path.chmod(0o666)
    with pytest.raises(OSError, match="open to others"):
        SharedAskTable(path, capacity=4)
