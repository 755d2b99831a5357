"""Precedence through the engine: locked rules, then school rules, then the Department's, then default."""

from __future__ import annotations

import datetime as dt

import pytest

from classgate.policies.loader import load_policy
from tests.policies.lang_paths import SAMPLES

OVERLAY = """\
classgate: 1
overlay: true
name: test-school
groups:
  students: {networks: [192.168.10.0/24]}
  library:  {networks: [192.168.20.0/24]}
categories:
  social: {domains: [school-added-social.example]}
rules:
  - {name: coding-club, action: allow, groups: [students], when: class_hours, domains: [roblox.com]}
  - {name: casino-ok, action: allow, categories: [gambling]}
  - {name: library-quiet, action: block, groups: [library]}
default: block
"""
MON_0900 = dt.datetime(2026, 11, 23, 9, 0)
EXAM_0900 = dt.datetime(2026, 12, 15, 9, 0)


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    path = tmp_path_factory.mktemp("school") / "school.yaml"
    path.write_text(OVERLAY, encoding="utf-8")
    return load_policy(SAMPLES / "department.yaml", overlay=path)


# (url, client, time, expected action, rule, tier)
CASES = [
    # the school overrides the Department's unlocked focus-in-class for one site...
    ("https://www.roblox.com/", "10.10.1.2", MON_0900, "allow", "coding-club", "school"),
    ("https://miniclip.com/", "10.10.1.2", MON_0900, "block", "focus-in-class", "department"),
    # ...and its networks join the Department's group
    ("https://www.roblox.com/", "192.168.10.7", MON_0900, "allow", "coding-club", "school"),
    ("https://facebook.com/", "192.168.10.7", MON_0900, "block", "focus-in-class", "department"),
    # a school domain added to a Department category counts for the Department's rules
    ("https://school-added-social.example/", "10.10.1.2", MON_0900, "block", "focus-in-class", "department"),
    # but nothing gets past a locked rule
    ("http://blocked.example/", "10.20.0.5", MON_0900, "block", "harmful", "locked"),
    ("https://www.roblox.com/", "10.10.1.2", EXAM_0900, "block", "exam-lockdown", "locked"),
    ("https://olm.vn/", "10.10.1.2", EXAM_0900, "allow", "exam-sites", "locked"),
    # school rules come before the Department's unlocked ones
    ("https://olm.vn/", "192.168.20.9", MON_0900, "block", "library-quiet", "school"),
    ("https://olm.vn/", "10.20.0.5", MON_0900, "allow", "education", "department"),
    # the school's default replaces the Department's
    ("https://uncategorized.example/", "10.20.0.5", MON_0900, "block", None, "default"),
]


@pytest.mark.parametrize(("url", "client", "at", "action", "rule", "tier"), CASES)
def test_precedence(policy, url, client, at, action, rule, tier):
    d = policy.decide(url, client=client, at=at)
    assert (d.action, d.rule, d.tier) == (action, rule, tier)


def test_shadowed_school_rule_is_reported(policy):
    assert [w.message for w in policy.warnings if "can never take effect" in w.message] == [
        "rule 'casino-ok' can never take effect: the Department's locked rule 'harmful' always matches first"
    ]


def test_banking_is_never_decrypted_in_the_sample():
    policy = load_policy(SAMPLES / "department.yaml", overlay=SAMPLES / "school.yaml")
    assert "banking" in policy.tls.never_decrypt
    d = policy.decide_host("bank-passthrough.example", client="10.10.1.2", at=MON_0900)
    assert (d.action, d.categories) == ("allow", ("banking",))
    assert policy.safe_search.youtube == "strict"
