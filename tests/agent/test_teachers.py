"""Teacher accounts (scrypt, salts, wrong passwords, groups), the Classroom API the CLI and the console call
(who may act on what, durations and caps, refusals), and the audit log (bounded, no addresses)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import stat
from pathlib import Path

import pytest

from classgate.agent.teachers.accounts import AccountError, Accounts, hash_password, password_matches
from classgate.agent.teachers.audit import AuditError, AuditLog
from classgate.agent.teachers.classroom import CLI_ADMIN, ActionRefused, Actor, Classroom
from classgate.policies import Policy, load_policy

POLICY = """\
classgate: 1
name: teachers
timezone: Asia/Ho_Chi_Minh
categories:
  adult: {domains: [adult.test], locked: true}
  games: {domains: [games.test]}
groups:
  students: {networks: [10.0.0.0/16]}
  teachers: {networks: [10.1.0.0/16]}
schedules:
  period-1:
    - {days: mon-fri, from: "07:00", to: "07:45"}
rules:
  - {name: harmful, action: block, locked: true, domains: [casino.test]}
  - {name: no-games, action: block, categories: [games, adult]}
teachers: {max_duration: 1h}
"""
OVERLAY = """\
classgate: 1
overlay: true
groups:
  class-10a: {networks: [10.0.10.0/24]}
"""
TZ = dt.timezone(dt.timedelta(hours=7))
MONDAY_0710 = dt.datetime(2026, 11, 23, 7, 10, tzinfo=TZ).timestamp()  # inside period-1 (ends 07:45)
MONDAY_1200 = dt.datetime(2026, 11, 23, 12, 0, tzinfo=TZ).timestamp()  # no window active


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    d = tmp_path_factory.mktemp("teachers-policy")
    (d / "policy.yaml").write_text(POLICY, encoding="utf-8")
    (d / "overlay.yaml").write_text(OVERLAY, encoding="utf-8")
    return load_policy(d / "policy.yaml", d / "overlay.yaml")


# -- accounts ---------------------------------------------------------------------------------------

def test_password_is_scrypt_with_a_salt_per_account(tmp_path: Path) -> None:
    accounts = Accounts(tmp_path)
    lan, lan_password = accounts.add("lan", ("students",))
    minh, _ = accounts.add("minh", ("students",))
    h = lan.password
    assert h.key == hashlib.scrypt(lan_password.encode(), salt=h.salt, n=h.n, r=h.r, p=h.p,
                                   maxmem=256 * h.n * h.r, dklen=32)
    assert h.n >= 2**14 and h.r >= 8  # memory-hard: at least 16 MiB per guess
    assert lan.password.salt != minh.password.salt
    stored = (tmp_path / "teachers.json").read_text()
    assert lan_password not in stored
    assert stat.S_IMODE((tmp_path / "teachers.json").stat().st_mode) == 0o600
    assert lan_password not in repr(lan) and h.key.hex() not in repr(lan)


@pytest.mark.parametrize(
    ("name", "password", "ok"),
    [("lan", None, True), ("lan", "wrong", False), ("lan", "", False), ("nobody", None, False),
     ("LAN", None, False)],
)
def test_verify(tmp_path: Path, name: str, password: str | None, ok: bool) -> None:
    accounts = Accounts(tmp_path)
    _, given = accounts.add("lan", ("students",))
    account = accounts.verify(name, given if password is None else password)
    assert (account is not None) == ok
    if ok:
        assert account is not None and account.groups == ("students",)


def test_reset_and_set_password(tmp_path: Path) -> None:
    accounts = Accounts(tmp_path)
    _, first = accounts.add("lan", ("students",))
    _, second = accounts.reset("lan")
    assert accounts.verify("lan", first) is None and accounts.verify("lan", second) is not None
    changed = accounts.set_password("lan", "a long enough secret")
    assert not changed.must_change_password
    assert accounts.verify("lan", "a long enough secret") is not None and accounts.verify("lan", second) is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda a: a.add("Lan Nguyen", ("students",)), "is not a teacher name"),
        (lambda a: a.add("lan", ()), "needs at least one group"),
        (lambda a: a.add("minh", ("students",)), "exists already"),
        (lambda a: a.remove("nobody"), "no teacher 'nobody' \\(teachers: minh\\)"),
        (lambda a: a.reset("nobody"), "no teacher 'nobody'"),
        (lambda a: a.set_password("minh", "short"), "at least 10 characters"),
    ],
)
def test_account_errors(tmp_path: Path, call, message: str) -> None:
    accounts = Accounts(tmp_path)
    accounts.add("minh", ("students",))
    with pytest.raises(AccountError, match=message):
        call(accounts)


def test_admin_needs_no_groups_and_remove(tmp_path: Path) -> None:
    accounts = Accounts(tmp_path)
    admin, _ = accounts.add("hieu", (), admin=True)
    assert admin.admin and [a.name for a in accounts.list()] == ["hieu"]
    accounts.remove("hieu")
    assert accounts.list() == []


def test_password_matches_compares_the_whole_key() -> None:
    stored = hash_password("correct horse", n=2**10)
    assert password_matches("correct horse", stored)
    assert not password_matches("correct hors", stored)


# -- who may act on what ----------------------------------------------------------------------------

LAN = Actor("lan", ("students",))
MINH_10A = Actor("minh", ("class-10a",))


@pytest.mark.parametrize(
    ("actor", "group", "ok"),
    [
        (LAN, "students", True),
        (LAN, "class-10a", True),  # a subgroup of the teacher's group
        (LAN, "teachers", False),
        (MINH_10A, "class-10a", True),
        (MINH_10A, "students", False),  # not the parent of one's own group
        (CLI_ADMIN, "teachers", True),
        (Actor("hieu", (), admin=True), "default", True),
    ],
)
def test_may_act_on(tmp_path: Path, policy: Policy, actor: Actor, group: str, ok: bool) -> None:
    assert Classroom(tmp_path, policy).may_act_on(actor, group) == ok


@pytest.mark.parametrize(
    ("now", "duration", "seconds"),
    [
        (MONDAY_0710, None, 35 * 60),  # to the end of the window in force (07:45)
        (MONDAY_1200, None, 3600),  # no window: the policy's cap
        (MONDAY_0710, dt.timedelta(minutes=20), 20 * 60),
        (MONDAY_0710, dt.timedelta(hours=1), 3600),
    ],
)
def test_duration(tmp_path: Path, policy: Policy, now: float, duration: dt.timedelta | None, seconds: float) -> None:
    room = Classroom(tmp_path, policy, clock=lambda: now)
    action = room.start(LAN, "allow", "students", ["games.test"], duration)
    assert (action.starts, action.until - action.starts) == (now, seconds)


@pytest.mark.parametrize(
    ("actor", "kind", "group", "sites", "duration", "message"),
    [
        (LAN, "allow", "teachers", ["games.test"], None, "lan may act on students, class-10a, not on group 'teachers'"),
        (LAN, "allow", "students", ["casino.test"], None, "locked rule 'harmful'"),
        (LAN, "lock", "class-10a", ["adult.test"], None, "locked category 'adult'"),
        (LAN, "allow", "students", ["games.test"], dt.timedelta(hours=2), "at most 1h here"),
        (LAN, "pause", "students", ["games.test"], None, "give no sites"),
        (LAN, "block", "students", [], None, "needs at least one site"),
        (LAN, "block", "students", ["exa mple"], None, "is not a site"),
        (LAN, "unblock", "students", ["games.test"], None, "unknown class action 'unblock'"),
        (CLI_ADMIN, "pause", "studnets", [], None, "no group 'studnets'"),
    ],
)
def test_refused_and_audited(tmp_path: Path, policy: Policy, actor: Actor, kind: str, group: str, sites: list[str],
                             duration: dt.timedelta | None, message: str) -> None:
    room = Classroom(tmp_path, policy, clock=lambda: MONDAY_0710)
    with pytest.raises(ActionRefused, match=message):
        room.start(actor, kind, group, sites, duration)  # type: ignore[arg-type]
    assert room.active() == ()
    (line,) = AuditLog(tmp_path).read()
    assert (line["event"], line["by"], line["group"]) == ("refused", actor.name, group)
    assert message.split("'")[0] in line["reason"]


def test_end_is_bounded_by_groups(tmp_path: Path, policy: Policy) -> None:
    room = Classroom(tmp_path, policy, clock=lambda: MONDAY_0710)
    action = room.start(CLI_ADMIN, "pause", "students")
    assert room.active(MINH_10A) == ()  # not on minh's groups: neither shown nor endable
    with pytest.raises(ActionRefused, match="may not end an action on group 'students'"):
        room.end(MINH_10A, action.id)
    assert room.active(LAN) == (action,)
    room.end(LAN, action.id)
    with pytest.raises(ActionRefused, match="is in force"):
        room.end(LAN, action.id)
    assert [(line["event"], line["by"]) for line in AuditLog(tmp_path).read()] == [("start", "admin"), ("end", "lan")]


# -- the audit log -----------------------------------------------------------------------------------

def test_audit_line_says_who_what_group_from_until(tmp_path: Path, policy: Policy) -> None:
    room = Classroom(tmp_path, policy, clock=lambda: MONDAY_0710)
    action = room.start(LAN, "allow", "class-10a", ["https://games.test/play"], dt.timedelta(minutes=30))
    (line,) = AuditLog(tmp_path).read()
    assert line == {"at": "2026-11-23T07:10:00+07:00", "event": "start", "by": "lan", "id": action.id,
                    "kind": "allow", "group": "class-10a", "sites": ["games.test"],
                    "from": "2026-11-23T07:10:00+07:00", "until": "2026-11-23T07:40:00+07:00"}


def test_audit_log_is_rotated_and_bounded(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, max_bytes=2000, keep=3)
    for i in range(200):
        log.write("account-add", "admin", MONDAY_0710 + i, TZ, teacher=f"t{i:03d}")
    files = list(log.files())
    assert len(files) == 4  # the current file and 3 rotated ones, the oldest lines dropped
    assert all(f.stat().st_size <= 2000 for f in files)
    lines = log.read()
    teachers = [line["teacher"] for line in lines]
    assert teachers == sorted(teachers) and teachers[-1] == "t199" and "t000" not in teachers
    assert all(json.loads(json.dumps(line)) == line for line in lines)


def test_no_action_without_its_audit_record(tmp_path: Path, policy: Policy) -> None:
    (tmp_path / "audit").write_text("a file where the audit folder should be", encoding="utf-8")
    room = Classroom(tmp_path, policy, clock=lambda: MONDAY_0710)
    with pytest.raises(AuditError, match="cannot write the audit log"):
        room.start(LAN, "pause", "students")
    assert room.active() == ()
