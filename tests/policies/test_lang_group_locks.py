"""No group a school writes escapes a locked Department rule: every locked rule of the sample baseline, for every
way of carving clients out of the Department's groups."""

from __future__ import annotations

import datetime as dt

import pytest

from classgate.policies import load_policy
from classgate.policies.errors import PolicyError
from tests.policies.lang_paths import SAMPLES

DEPT = SAMPLES / "department.yaml"
EXAM = dt.datetime(2026, 12, 15, 9, 0)  # exam week (locked exam-sites / exam-lockdown), a Tuesday
# Each school rule tries to let the carved-out group do anything; the locked rules come first regardless.
ESCAPE = "rules:\n  - {name: anything-goes, action: allow, groups: [GROUP]}\n"

# How a school carves clients out: (overlay groups YAML, the carved group's name, a client in it)
CARVINGS = [
    ("  vip: {networks: [10.10.0.0/17]}\n", "vip", "10.10.1.1"),  # a smaller network inside students
    ("  lab: {networks: [10.10.5.0/24]}\n", "lab", "10.10.5.9"),
    ('  lab6: {networks: ["fd00:30::/80"]}\n', "lab6", "fd00:30::9"),  # IPv6, inside phones
    ("  wifi: {networks: [192.168.10.0/24], in: students}\n", "wifi", "192.168.10.7"),  # named with `in:`
]
# Every locked rule of the sample baseline, with a request it decides: (rule, URL, time)
LOCKED = [
    ("harmful", "http://blocked.example/", EXAM),
    ("harmful", "http://gambling-blocked.example/", dt.datetime(2026, 11, 24, 20, 0)),
    ("exam-sites", "https://olm.vn/bai-thi", EXAM),
    ("exam-lockdown", "https://facebook.com/", EXAM),
]


def _is_phone(client: str) -> bool:
    return ":" in client


@pytest.mark.parametrize(("groups", "group", "client"), CARVINGS, ids=[c[1] for c in CARVINGS])
@pytest.mark.parametrize(("rule", "url", "at"), LOCKED, ids=[f"{r[0]}:{r[1]}" for r in LOCKED])
def test_a_carved_out_group_is_still_bound_by_every_locked_rule(write_yaml, tmp_path, groups, group, client,
                                                                 rule, url, at):
    overlay = write_yaml(f"classgate: 1\noverlay: true\nname: s\ngroups:\n{groups}{ESCAPE.replace('GROUP', group)}",
                         "school.yaml")
    policy = load_policy(DEPT, overlay=overlay, cache_dir=tmp_path / "c")
    d = policy.decide(url, client=client, at=at)
    assert d.group == group
    assert policy.group_path(group)[1] in ("students", "phones")
    assert (d.rule, d.tier) == (rule, "locked"), d


def test_a_school_group_outside_every_department_network_is_under_default(write_yaml, tmp_path):
    # Locked rules that name no group (harmful) bind it too; a lock naming `default` would as well.
    overlay = write_yaml("classgate: 1\noverlay: true\nname: s\ngroups:\n  library: {networks: [192.168.20.0/24]}\n"
                         + ESCAPE.replace("GROUP", "library"), "school.yaml")
    policy = load_policy(DEPT, overlay=overlay, cache_dir=tmp_path / "c")
    assert policy.group_path("library") == ("library", "default")
    d = policy.decide("http://blocked.example/", client="192.168.20.5", at=EXAM)
    assert (d.rule, d.tier) == ("harmful", "locked")
    assert policy.decide("https://facebook.com/", client="192.168.20.5", at=EXAM).rule == "anything-goes"


def test_a_lock_naming_default_binds_school_groups_outside_the_department_networks(write_yaml, tmp_path):
    dept = write_yaml(DEPT.read_text(encoding="utf-8").replace(
        "rules:                                   # first match wins\n",
        "rules:                                   # first match wins\n"
        "  - {name: guests-no-games, action: block, groups: [default], categories: [games], locked: true}\n",
    ).replace("path: lists/ut1", f"path: {SAMPLES / 'lists' / 'ut1'}"), "dept.yaml")
    overlay = write_yaml("classgate: 1\noverlay: true\nname: s\ngroups:\n  library: {networks: [192.168.20.0/24]}\n"
                         + ESCAPE.replace("GROUP", "library"), "school.yaml")
    policy = load_policy(dept, overlay=overlay, cache_dir=tmp_path / "c")
    d = policy.decide("http://games-blocked.example/", client="192.168.20.5")
    assert (d.rule, d.group) == ("guests-no-games", "library")


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ("  half: {networks: [10.10.0.0/15]}\n", "overlaps Department group 'students'"),  # partial overlap
        ("  same: {networks: [10.10.0.0/16]}\n", "is in both group 'students' and group 'same'"),  # same network
        ("  vip: {networks: [10.10.0.0/17], in: teachers}\n", "lie inside Department group 'students'"),
    ],
)
def test_carvings_that_would_escape_are_errors(write_yaml, tmp_path, groups, message):
    overlay = write_yaml(f"classgate: 1\noverlay: true\nname: s\ngroups:\n{groups}", "school.yaml")
    with pytest.raises(PolicyError, match=message):
        load_policy(DEPT, overlay=overlay, cache_dir=tmp_path / "c")


def test_settings_naming_a_group_cover_its_subgroups(write_yaml, tmp_path):
    overlay = write_yaml("classgate: 1\noverlay: true\nname: s\ngroups:\n  vip: {networks: [10.10.0.0/17]}\n",
                         "school.yaml")
    policy = load_policy(DEPT, overlay=overlay, cache_dir=tmp_path / "c")
    assert "vip" in policy.tls.inspect_groups  # students are inspected, so is a group inside them
