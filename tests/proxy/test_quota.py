"""Daily quotas in memory: the active-minute model, the reset at local midnight, the bound on the table."""

from __future__ import annotations

import datetime as dt
import os
import stat
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from classgate.proxy.clock import Clock
from classgate.proxy.quota import QuotaBook, QuotaBookError, shared_table_path

HEADER_BYTES, SLOT_BYTES = 52, 28  # the table's layout (proxy/quota.py): header, then slots

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
A, B = "10.0.3.7", "10.0.3.8"


def at(text: str, tz: ZoneInfo = HCM) -> dt.datetime:
    """The local time a pinned clock (as the gateway's) gives."""
    return Clock(dt.datetime.fromisoformat(text)).now(tz)


# Each case: a 2-minute quota on rule "games", and the requests in order: (local time, device, allowed, used).
CASES = {
    "one minute is counted once, whatever the requests in it": [
        ("2026-11-23 10:00:01", A, True, 1), ("2026-11-23 10:00:30", A, True, 1), ("2026-11-23 10:00:59", A, True, 1),
    ],
    "the last minute is a whole minute": [
        ("2026-11-23 10:00:00", A, True, 1), ("2026-11-23 10:05:00", A, True, 2), ("2026-11-23 10:05:59", A, True, 2),
        ("2026-11-23 10:06:00", A, False, 2), ("2026-11-23 12:00:00", A, False, 2),
    ],
    "minutes need not be next to each other": [
        ("2026-11-23 08:00:10", A, True, 1), ("2026-11-23 15:30:00", A, True, 2), ("2026-11-23 15:31:00", A, False, 2),
    ],
    "each device has its own": [
        ("2026-11-23 10:00:00", A, True, 1), ("2026-11-23 10:01:00", A, True, 2), ("2026-11-23 10:02:00", A, False, 2),
        ("2026-11-23 10:02:00", B, True, 1),
    ],
    "reset at local midnight": [
        ("2026-11-23 23:58:00", A, True, 1), ("2026-11-23 23:59:00", A, True, 2), ("2026-11-23 23:59:59", A, True, 2),
        ("2026-11-24 00:00:00", A, True, 1), ("2026-11-24 00:01:00", A, True, 2), ("2026-11-24 00:02:00", A, False, 2),
    ],
    "used up stays used up until midnight": [
        ("2026-11-23 07:00:00", A, True, 1), ("2026-11-23 07:01:00", A, True, 2), ("2026-11-23 23:59:59", A, False, 2),
        ("2026-11-24 00:00:00", A, True, 1),
    ],
}


@pytest.mark.parametrize("steps", CASES.values(), ids=CASES.keys())
def test_active_minutes(steps):
    book = QuotaBook()
    for when, device, allowed, used in steps:
        use = book.charge(device, "games", 2, at(when))
        assert (use.allowed, use.used, use.left) == (allowed, used, 2 - used), (when, device)


def test_midnight_is_the_policy_zones():
    """23:30 in Ho Chi Minh City is 16:30 UTC: the day turns at the policy's midnight, not the server's."""
    book = QuotaBook()
    assert book.charge(A, "games", 1, dt.datetime(2026, 11, 23, 16, 29, tzinfo=dt.UTC).astimezone(HCM)).allowed
    assert not book.charge(A, "games", 1, dt.datetime(2026, 11, 23, 16, 40, tzinfo=dt.UTC).astimezone(HCM)).allowed
    assert book.charge(A, "games", 1, dt.datetime(2026, 11, 23, 17, 0, tzinfo=dt.UTC).astimezone(HCM)).allowed


def test_each_rule_is_counted_apart():
    book = QuotaBook()
    assert book.charge(A, "games", 1, at("2026-11-23 10:00")).allowed
    assert not book.charge(A, "games", 1, at("2026-11-23 10:01")).allowed
    assert book.charge(A, "video", 1, at("2026-11-23 10:01")).allowed


def test_the_first_refusal_of_a_day_is_flagged_once():
    book = QuotaBook()
    book.charge(A, "games", 1, at("2026-11-23 10:00"))
    flags = [book.charge(A, "games", 1, at(f"2026-11-23 10:0{m}")).newly_used_up for m in range(1, 5)]
    assert flags == [True, False, False, False]
    book.charge(A, "games", 1, at("2026-11-24 10:00"))
    assert book.charge(A, "games", 1, at("2026-11-24 10:01")).newly_used_up  # a new day, a new count


def test_peek_counts_nothing():
    book = QuotaBook()
    assert book.peek(A, "games", 30, at("2026-11-23 10:00")).left == 30
    book.charge(A, "games", 30, at("2026-11-23 10:00"))
    assert book.peek(A, "games", 30, at("2026-11-23 10:07")).left == 29
    assert book.charge(A, "games", 30, at("2026-11-23 10:07")).used == 2


def test_a_full_table_fails_closed_for_new_devices_only():
    book = QuotaBook(capacity=2)
    for device in ("10.0.0.1", "10.0.0.2"):
        assert book.charge(device, "games", 30, at("2026-11-23 10:00")).allowed
    refused = book.charge("10.0.0.3", "games", 30, at("2026-11-23 10:00"))
    assert (refused.allowed, refused.left) == (False, 0)
    assert not book.peek("10.0.0.3", "games", 30, at("2026-11-23 10:00")).allowed
    assert book.charge("10.0.0.1", "games", 30, at("2026-11-23 10:01")).allowed  # those counted go on
    assert len(book) == 2
    assert book.charge("10.0.0.3", "games", 30, at("2026-11-24 08:00")).allowed  # midnight empties the table


def slot_hashes(table: Path) -> set[bytes]:
    """The keyed hashes in a shared table's slots (the file holds nothing else of a device)."""
    data = table.read_bytes()[HEADER_BYTES:]
    return {data[i:i + 16] for i in range(0, len(data), SLOT_BYTES) if data[i:i + 16] != bytes(16)}


def test_keys_are_random_per_day_and_never_the_address(tmp_path):
    table = tmp_path / "quota-table"
    keys = iter([b"i" * 32, b"k" * 32, b"q" * 32])  # the first: the new table, before its first day
    book = QuotaBook(capacity=16, shared=table, new_key=lambda: next(keys))
    book.charge(A, "games", 5, at("2026-11-23 10:00"))
    day_one = slot_hashes(table)
    book.charge(A, "games", 5, at("2026-11-24 10:00"))
    day_two = slot_hashes(table)
    assert len(day_one) == len(day_two) == 1 and day_one != day_two  # another day, another key: another slot
    content = table.read_bytes()
    assert A.encode() not in content and b"games" not in content
    assert stat.S_IMODE(os.stat(table).st_mode) == 0o600
    assert A not in repr(book)
    book.close()


def test_workers_share_one_table(tmp_path):
    """Two processes (as two workers) counting one device: the minutes add up in one table."""
    table = tmp_path / "quota-table"
    script = (
        "import datetime as dt, sys, zoneinfo\n"
        "from pathlib import Path\n"
        "from classgate.proxy.quota import QuotaBook\n"
        "book = QuotaBook(capacity=64, shared=Path(sys.argv[1]))\n"
        "use = book.charge('10.0.3.7', 'games', 2, dt.datetime.fromisoformat(sys.argv[2]).replace("
        "tzinfo=zoneinfo.ZoneInfo('Asia/Ho_Chi_Minh')))\n"
        "print(use.allowed, use.used)\n"
    )
    answers = []
    for when in ("2026-11-23 10:00", "2026-11-23 10:01", "2026-11-23 10:02"):
        done = subprocess.run([sys.executable, "-c", script, str(table), when], capture_output=True, text=True,
                              timeout=60, check=True)
        answers.append(done.stdout.split())
    assert answers == [["True", "1"], ["True", "2"], ["False", "2"]]
    here = QuotaBook(capacity=64, shared=table)  # this process maps the same table
    assert not here.charge(A, "games", 2, at("2026-11-23 10:03")).allowed
    here.close()


def test_a_table_of_another_size_starts_afresh(tmp_path):
    table = tmp_path / "quota-table"
    small = QuotaBook(capacity=8, shared=table)
    small.charge(A, "games", 1, at("2026-11-23 10:00"))
    small.close()
    bigger = QuotaBook(capacity=32, shared=table)
    assert bigger.charge(A, "games", 1, at("2026-11-23 10:01")).allowed and len(bigger) == 1
    bigger.close()


def test_an_unusable_shared_table_says_so(tmp_path):
    with pytest.raises(QuotaBookError, match="cannot map the quota table"):
        QuotaBook(shared=tmp_path / "no-such-dir" / "table")


def test_shared_table_path_is_one_per_state_dir(tmp_path):
    shm = tmp_path / "shm"
    shm.mkdir()
    a, b = shared_table_path(tmp_path / "a", shm), shared_table_path(tmp_path / "b", shm)
    assert a is not None and b is not None and a != b and a.parent == shm
    assert shared_table_path(tmp_path / "a", shm) == shared_table_path(tmp_path / "x" / ".." / "a", shm)
    assert shared_table_path(tmp_path / "a", tmp_path / "missing") is None


def test_capacity_must_be_positive():
    with pytest.raises(ValueError):
        QuotaBook(capacity=0)
