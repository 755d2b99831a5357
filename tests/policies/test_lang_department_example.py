"""The issue's Department example, on the real UT1 lists: every group x time x category it mentions."""

from __future__ import annotations

import datetime as dt

import pytest

from classgate.policies.loader import load_policy
from tests.policies.lang_paths import SAMPLES, SHARED_UT1

# One host per category, each read from the real lists (and in that category only).
HOSTS = {
    "gambling": ("http://0-casino.info/", "ut1/gambling"),
    "adult": ("http://020sextoy.com/sk/page", "ut1/adult"),        # adult has only `urls` in ../shared
    "mixed_adult": ("http://10putes.com/", "ut1/mixed_adult"),
    "security": ("http://0-1-x.009418154.xyz/", "ut1/malware"),
    "circumvention": ("https://dns.google/dns-query", "ut1/doh"),
    "social": ("https://www.tiktok.com/@school", "inline"),
    "games": ("https://www.roblox.com/games", "ut1/games"),
    "education": ("https://hcm.edu.vn/", "inline"),
    "banking": ("https://portal.vietcombank.com.vn/", "ut1/bank"),
    "other": ("https://www.wikipedia.org/", None),
}
CLIENTS = {"teacher": "10.20.0.5", "student": "10.10.1.2", "phone": "10.30.0.9", "phone6": "fd00:30::9",
           "unknown": "192.168.99.1"}
TIMES = {
    "mon 09:00": "2026-11-23 09:00",     # class hours
    "mon 12:00": "2026-11-23 12:00",     # between the two class-hour windows
    "sat 10:00": "2026-11-28 10:00",
    "exam 09:00": "2026-12-15 09:00",    # Tuesday of exam week: exam_week and class_hours both active
}
H = "harmful"
FORBIDDEN = {"gambling": H, "adult": H, "mixed_adult": H, "security": H, "circumvention": H}
FREE = {**FORBIDDEN, "social": None, "games": None, "education": "education", "banking": None, "other": None}
CLASS = {**FREE, "social": "focus-in-class", "games": "focus-in-class"}
PHONE_CLASS = {**FORBIDDEN, "social": "phones-in-class", "games": "phones-in-class", "education": "education",
               "banking": "phones-in-class", "other": "phones-in-class"}
EXAM = {**FORBIDDEN, "social": "exam-lockdown", "games": "exam-lockdown", "education": "exam-sites",
        "banking": "exam-lockdown", "other": "exam-lockdown"}

# (time, client) -> the rule deciding each destination (None: no rule, `default: allow`)
EXPECTED = {
    ("mon 09:00", "teacher"): FREE,
    ("mon 09:00", "student"): CLASS,
    ("mon 09:00", "phone"): PHONE_CLASS,
    ("mon 09:00", "phone6"): PHONE_CLASS,
    ("mon 09:00", "unknown"): FREE,
    ("mon 12:00", "teacher"): FREE,
    ("mon 12:00", "student"): FREE,
    ("mon 12:00", "phone"): FREE,
    ("mon 12:00", "unknown"): FREE,
    ("sat 10:00", "teacher"): FREE,
    ("sat 10:00", "student"): FREE,
    ("sat 10:00", "phone"): FREE,
    ("sat 10:00", "unknown"): FREE,
    ("exam 09:00", "teacher"): FREE,
    ("exam 09:00", "student"): EXAM,
    ("exam 09:00", "phone"): EXAM,
    ("exam 09:00", "phone6"): EXAM,
    ("exam 09:00", "unknown"): FREE,
}
ACTIONS = {None: "allow", "harmful": "block", "exam-sites": "allow", "exam-lockdown": "block",
           "education": "allow", "phones-in-class": "block", "focus-in-class": "block"}
TIERS = {None: "default", "harmful": "locked", "exam-sites": "locked", "exam-lockdown": "locked",
         "education": "department", "phones-in-class": "department", "focus-in-class": "department"}
GROUPS = {"teacher": "teachers", "student": "students", "phone": "phones", "phone6": "phones", "unknown": "default"}
SCHEDULES = {"mon 09:00": ("class_hours",), "mon 12:00": (), "sat 10:00": (), "exam 09:00": ("class_hours", "exam_week")}
CATEGORY_OF = {"mixed_adult": "adult", "other": None}


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    if not (SHARED_UT1 / "gambling" / "domains").is_file():
        pytest.skip(f"the UT1 blacklists are not at {SHARED_UT1} (see ../shared/data/ut1/SOURCE.md)")
    text = (SAMPLES / "department.yaml").read_text(encoding="utf-8")
    folder = tmp_path_factory.mktemp("department")
    path = folder / "department.yaml"
    path.write_text(text.replace("path: lists/ut1", f"path: '{SHARED_UT1}'"), encoding="utf-8")
    return load_policy(path)


CASES = [(when, who, dest) for (when, who), rules in EXPECTED.items() for dest in rules]


@pytest.mark.parametrize(("when", "who", "dest"), CASES)
def test_decision(policy, when, who, dest):
    url, source = HOSTS[dest]
    at = dt.datetime.strptime(TIMES[when], "%Y-%m-%d %H:%M")
    d = policy.decide(url, client=CLIENTS[who], at=at)
    rule = EXPECTED[(when, who)][dest]
    assert (d.action, d.rule, d.tier) == (ACTIONS[rule], rule, TIERS[rule])
    assert d.group == GROUPS[who]
    assert d.schedules == SCHEDULES[when]
    category = CATEGORY_OF.get(dest, dest)
    assert d.categories == ((category,) if category else ())
    if source:
        assert source in {m.source for m in d.matched}


def test_the_policy_reads_the_whole_lists(policy):
    assert policy.stats.list_entries > 500_000
    assert policy.stats.rules == 6
