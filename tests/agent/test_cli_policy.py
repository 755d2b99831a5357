"""`classgate validate` and `classgate check`: every exit path, through click's CliRunner."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from classgate.agent.cli import main
from tests.policies.lang_paths import SAMPLES

DEPT = str(SAMPLES / "department.yaml")
SCHOOL = str(SAMPLES / "school.yaml")


def run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(main, list(args), input=stdin)


def test_validate_ok():
    result = run("validate", DEPT, "--overlay", SCHOOL)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ok: so-gddt-ha-noi + school.yaml: 9 rules, 9 categories, ")
    assert " list entries, 0 warnings (version " in result.stdout
    assert result.stderr == ""


def test_validate_series_sizes_the_metrics_from_the_real_definitions():
    from classgate.metrics.cardinality import max_series
    from classgate.proxy.metric_labels import METRIC_LABELS

    result = run("validate", DEPT, "--series", "--schools", "10")
    assert result.exit_code == 0, result.output
    bound = sum(max_series(METRIC_LABELS, 8, 3).values())  # the sample: 8 categories, 3 groups
    assert "metric series: 8 categories, 3 groups" in result.stdout
    assert f"upper bound per gateway                       {bound}" in result.stdout
    assert f"upper bound {bound * 10:,}" in result.stdout


def test_validate_prints_warnings_and_succeeds(write_yaml, tmp_path):
    overlay = write_yaml("classgate: 1\noverlay: true\nrules:\n  - {name: casino-ok, action: allow, "
                         "categories: [gambling]}\n", "school.yaml")
    result = run("validate", DEPT, "--overlay", str(overlay))
    assert result.exit_code == 0, result.output
    assert result.stderr == (f"{overlay}:4:12: warning: rule 'casino-ok' can never take effect: the Department's "
                             "locked rule 'harmful' always matches first\n")
    assert "1 warning (version" in result.stdout


def test_validate_reports_list_junk_as_warnings(write_yaml, tmp_path):
    (tmp_path / "extra.txt").write_text("good.example\nthis is junk\n")
    policy = write_yaml("classgate: 1\nname: t\nsources:\n  extra: {format: domains, path: extra.txt}\n"
                        "categories:\n  c: {include: [extra]}\nrules:\n  - {name: r, action: block, "
                        "categories: [c]}\n")
    result = run("validate", str(policy))
    assert result.exit_code == 0, result.output
    assert f"{tmp_path / 'extra.txt'}:2:" in result.stderr


@pytest.mark.parametrize(("text", "lines"), [
    ("classgate: 1\nname: t\nrulez: []\n", [":3:1: unknown key 'rulez' at the top level; did you mean 'rules'?"]),
    ("classgate: 1\nname: t\ngroups:\n  a: {networks: [10.0.0.1/8]}\ndefault: deny\n",
     [":4:18: group 'a': '10.0.0.1/8' has host bits set; did you mean 10.0.0.0/8?",
      ":5:10: 'deny' is not one of allow, block"]),
    ("classgate: 1\nname: t\nrules: [\n", [":4:1: YAML syntax"]),
])
def test_validate_errors_exit_1_with_every_problem(write_yaml, text, lines):
    path = write_yaml(text)
    result = run("validate", str(path))
    assert result.exit_code == 1
    assert result.stdout == ""
    err = result.stderr.splitlines()
    assert len(err) == len(lines) + 1
    for got, want in zip(err, lines):
        assert got.startswith(f"{path}{want}")
    assert err[-1] == f"error: the policy is not valid ({len(lines)} problem{'s' if len(lines) > 1 else ''})"
    assert "Traceback" not in result.output


def test_validate_overlay_breaking_a_lock(write_yaml):
    overlay = write_yaml("classgate: 1\noverlay: true\nsafe_search: {google: 'off'}\n", "school.yaml")
    result = run("validate", DEPT, "--overlay", str(overlay))
    assert result.exit_code == 1
    assert f"{overlay}:3:23: safe_search is locked by the Department" in result.stderr


@pytest.mark.parametrize("args", [
    ["validate"],                                    # no file
    ["validate", "/nonexistent/policy.yaml"],
    ["validate", DEPT, "--overlay", "/nonexistent/school.yaml"],
    ["check", "https://x.example/", "--policy", DEPT, "--client", "10.0.0.300"],
    ["check", "https://x.example/", "--policy", DEPT, "--at", "tomorrow"],
    ["check", "https://x.example/", "--policy", DEPT, "--at", "2026-11-23 25:00"],
])
def test_bad_usage_exits_2(args):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_check_text_explains_the_decision():
    result = run("check", "https://www.roblox.com/games", "--policy", DEPT, "--client", "10.10.1.2",
                 "--at", "2026-11-23 09:00")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "BLOCK by rule 'focus-in-class' (tier department)",
        "  url       https://www.roblox.com/games",
        "  client    10.10.1.2 -> group students",
        "  time      2026-11-23 09:00 (Asia/Ho_Chi_Minh) -> schedules: class_hours",
        "  host      www.roblox.com -> categories: games",
        "  matched   games: roblox.com (from ut1/games)",
    ]


# (url, client, at, expected subset of the JSON object)
JSON_CASES = [
    ("http://blocked.example/", "10.20.0.5", "2026-11-28 10:00",
     {"action": "block", "rule": "harmful", "tier": "locked", "group": "teachers", "categories": ["gambling"],
      "schedules": [], "matched": [{"category": "gambling", "source": "ut1/gambling", "entry": "blocked.example"}]}),
    ("https://olm.vn/bai-hoc", "10.30.0.9", "2026-12-15 09:00",
     {"action": "allow", "rule": "exam-sites", "tier": "locked", "group": "phones",
      "schedules": ["class_hours", "exam_week"]}),
    ("https://uncategorized.example/", None, "2026-11-23 09:00",
     {"action": "allow", "rule": None, "tier": "default", "group": "default", "categories": [], "matched": []}),
    ("http://[bad/", "10.10.1.2", "2026-11-23 09:00", {"action": "block", "tier": "error", "rule": None}),
]


@pytest.mark.parametrize(("url", "client", "at", "expected"), JSON_CASES)
def test_check_json(url, client, at, expected):
    args = ["check", url, "--policy", DEPT, "--overlay", SCHOOL, "--at", at, "--json"]
    if client:
        args += ["--client", client]
    result = run(*args)
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert {k: got[k] for k in expected} == expected
    assert set(got) >= {"action", "rule", "tier", "group", "categories", "schedules", "matched"}


def test_check_reads_many_urls_from_stdin():
    stdin = ("https://www.roblox.com/ 10.10.1.2\n"
             "\n# a comment\n"
             "https://moet.gov.vn/ 10.30.0.9\n"
             "http://blocked.example/\n"
             "https://fd.example/ fd00:30::5\n")
    result = run("check", "-", "--policy", DEPT, "--client", "10.20.0.1", "--at", "2026-11-23 09:00", stdin=stdin)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["rule"], r["group"], r["client"]) for r in rows] == [
        ("focus-in-class", "students", "10.10.1.2"),
        ("education", "phones", "10.30.0.9"),
        ("harmful", "teachers", "10.20.0.1"),         # --client is the default for lines without one
        ("phones-in-class", "phones", "fd00:30::5"),
    ]


def test_check_stdin_bad_lines_are_reported_and_exit_1():
    result = run("check", "-", "--policy", DEPT, stdin="https://a.example/ not-an-ip\nx y z\nhttp://blocked.example/\n")
    assert result.exit_code == 1
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r.get("error") for r in rows[:2]] == ["'not-an-ip' is not an IP address", "expected `URL [CLIENT]`"]
    assert rows[2]["rule"] == "harmful"
    assert "2 input lines could not be read" in result.stderr


def test_check_with_an_invalid_policy_exits_1(write_yaml):
    path = write_yaml("classgate: 1\nname: t\ndefault: deny\n")
    result = run("check", "https://x.example/", "--policy", str(path))
    assert result.exit_code == 1
    assert f"{path}:3:10: 'deny' is not one of allow, block" in result.stderr


def test_check_cache_dir(tmp_path):
    args = ["check", "http://blocked.example/", "--policy", DEPT, "--json", "--state-dir", str(tmp_path / "c")]
    first, second = run(*args), run(*args)
    assert first.exit_code == second.exit_code == 0
    assert json.loads(first.stdout)["rule"] == json.loads(second.stdout)["rule"] == "harmful"
    assert any((tmp_path / "c").iterdir())


def test_check_without_a_policy_uses_the_sample_policy_like_run():
    result = run("check", "http://blocked.example/")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("BLOCK")


def test_the_old_cache_dir_spelling_still_works_with_a_warning(tmp_path):
    result = run("validate", DEPT, "--cache-dir", str(tmp_path / "c"))
    assert result.exit_code == 0
    assert "--cache-dir is now --state-dir" in result.stderr
    assert any((tmp_path / "c").iterdir())


def test_validate_with_an_overlay_shows_the_group_tree_and_address_counts():
    result = run("validate", DEPT, "--overlay", SCHOOL)
    assert result.exit_code == 0, result.output
    assert "default > library                school      256 IPv4 addresses" in result.stdout
    assert "students                         Department  65,792 IPv4 addresses" in result.stdout


def test_validate_warns_about_a_department_group_the_school_leaves_empty(write_yaml, tmp_path):
    dept = write_yaml("classgate: 1\nname: d\ngroups:\n  students: {}\n  teachers: {networks: [10.20.0.0/24]}\n")
    overlay = write_yaml("classgate: 1\noverlay: true\nname: s\n", "school.yaml")
    result = run("validate", str(dept), "--overlay", str(overlay))
    assert result.exit_code == 0
    assert "Department group 'students' has no networks after this overlay" in result.stderr


def test_check_shows_the_group_path_and_the_time_it_used():
    result = run("check", "http://example.com/", "--client", "192.168.20.5", "--policy", DEPT,
                 "--overlay", SCHOOL)
    assert result.exit_code == 0, result.output
    assert "-> group default > library" in result.stdout
    assert "(Asia/Ho_Chi_Minh)" in result.stdout and "now" not in result.stdout.split("time", 1)[1].split("\n")[0]
