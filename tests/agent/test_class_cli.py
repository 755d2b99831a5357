"""`classgate class ...`, `classgate teachers ...` and `classgate check --state-dir`: every exit path, through
click's CliRunner, on a state dir holding the policy the way a gateway keeps it (proxy/last_good.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from classgate.agent.cli import main
from classgate.policies import load_policy
from classgate.proxy.class_store import FILE
from classgate.proxy.last_good import LastGood
from tests.agent.test_teachers import POLICY  # groups students, teachers; a locked rule and category; cap 1h

ID = re.compile(r"^(?:started|ended): ([0-9a-f]{8}) ", re.MULTILINE)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A state dir as a gateway leaves it: the policy it enforces kept as the last good one."""
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY, encoding="utf-8")
    state_dir = tmp_path / "state"
    policy = load_policy(policy_file, cache_dir=state_dir / "compiled")
    LastGood(state_dir).save(policy, policy_file, None, "file")
    return state_dir


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def started_id(result: Result) -> str:
    match = ID.search(result.stdout)
    assert match, result.output
    return match.group(1)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["allow", "games.test", "https://www.edu.test/x", "--group", "students", "--for", "45m"],
         (r"started: [0-9a-f]{8}  allow  games.test, www.edu.test  for group students  until \S+ \S+ "
          r"\(Asia/Ho_Chi_Minh\)  by admin")),
        (["block", "edu.test", "--group", "teachers", "--for", "1h"], r"block  edu.test  for group teachers"),
        (["lock", "edu.test", "--group", "students"], r"lock   edu.test  for group students"),
        (["pause", "--group", "students", "--for", "10m"], r"pause  the Internet  for group students"),
    ],
)
def test_start(state: Path, args: list[str], expected: str) -> None:
    result = run("class", *args, "--state-dir", str(state))
    assert result.exit_code == 0, result.output
    assert re.search(expected, result.stdout), result.stdout
    listed = run("class", "list", "--state-dir", str(state), "--json")
    (record,) = json.loads(listed.stdout)
    assert record["id"] == started_id(result) and record["kind"] == args[0]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["allow", "casino.test", "--group", "students"], 1,
         "Error: casino.test stays blocked for group 'students': the Department's locked rule 'harmful' blocks it"),
        (["allow", "adult.test", "--group", "students"], 1, "the Department's locked category 'adult'"),
        (["pause", "--group", "students", "--for", "2h"], 1,
         "Error: a class action lasts at most 1h here (the policy's teachers.max_duration), not 2h"),
        (["pause", "--group", "students", "--for", "soon"], 2,
         "Invalid value for '--for': 'soon' is not a duration; write minutes or hours such as 45m, 2h or 1h30m"),
        (["pause", "--group", "class-9"], 1, "Error: the policy has no group 'class-9' (groups: students, teachers"),
        (["pause"], 2, "Missing option '--group'"),
        (["allow", "--group", "students"], 2, "Missing argument 'SITE...'"),
        (["pause", "--group", "students", "--by", "ghost"], 1,
         "Error: no teacher 'ghost': add one with `classgate teachers add ghost --groups ...`"),
        (["end", "deadbeef"], 1, "Error: no class action 'deadbeef' is in force (see `classgate class list`)"),
    ],
)
def test_errors(state: Path, args: list[str], code: int, message: str) -> None:
    result = run("class", *args, "--state-dir", str(state))
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_no_policy_says_how_to_give_one(tmp_path: Path) -> None:
    result = run("class", "pause", "--group", "students", "--state-dir", str(tmp_path / "empty"))
    assert result.exit_code == 1
    assert f"no policy found in {tmp_path / 'empty'}: start the gateway once with --state-dir" in result.output


def test_a_named_policy_that_does_not_validate(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("classgate: 1\nname: b\nteachers: {max_duration: 2 hours}\n", encoding="utf-8")
    result = run("class", "pause", "--group", "students", "--policy", str(broken), "--state-dir", str(tmp_path))
    assert result.exit_code == 1
    assert f"{broken}:3:26: '2 hours' is not valid here" in result.output


def test_list_and_end(state: Path) -> None:
    assert run("class", "list", "--state-dir", str(state)).stdout == "no class actions in force\n"
    action_id = started_id(run("class", "pause", "--group", "students", "--state-dir", str(state)))
    listed = run("class", "list", "--state-dir", str(state))
    assert listed.stdout.startswith(f"{action_id}  pause  the Internet  for group students")
    ended = run("class", "end", action_id, "--state-dir", str(state))
    assert ended.exit_code == 0 and ended.stdout.startswith(f"ended: {action_id}  pause")
    assert run("class", "list", "--state-dir", str(state), "--json").stdout == "[]\n"


def test_teachers_and_acting_as_one(state: Path) -> None:
    added = run("teachers", "add", "lan", "--groups", "students", "--state-dir", str(state))
    assert added.exit_code == 0, added.output
    password = re.search(r"one-time password: (\S+)", added.stdout)
    assert password and len(password.group(1)) >= 16
    assert password.group(1) not in (state / "teachers.json").read_text()
    listed = run("teachers", "list", "--state-dir", str(state), "--json")
    assert json.loads(listed.stdout) == [{"name": "lan", "groups": ["students"], "admin": False, "totp": False,
                                          "must_change_password": True}]
    refused = run("class", "pause", "--group", "teachers", "--by", "lan", "--state-dir", str(state))
    assert refused.exit_code == 1 and "lan may act on students, not on group 'teachers'" in refused.output
    own = run("class", "pause", "--group", "students", "--by", "lan", "--state-dir", str(state))
    assert own.exit_code == 0 and own.stdout.rstrip().endswith("by lan")
    reset = run("teachers", "reset", "lan", "--state-dir", str(state))
    assert reset.exit_code == 0 and password.group(1) not in reset.stdout
    assert run("teachers", "remove", "lan", "--state-dir", str(state)).stdout == "removed teacher lan\n"
    assert run("teachers", "list", "--state-dir", str(state)).stdout.startswith("no teachers yet")
    events = [json.loads(line)["event"] for line in (state / "audit" / "teacher-actions.log").read_text().splitlines()]
    assert events == ["account-add", "refused", "start", "account-reset", "account-remove"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "lan", "--groups", "studnets"], "Error: the policy has no group 'studnets' (groups: students,"),
        (["add", "Lan Nguyen", "--groups", "students"], "'Lan Nguyen' is not a teacher name"),
        (["add", "lan"], "Error: teacher 'lan' needs at least one group (--groups G1,G2) or --admin"),
        (["remove", "ghost"], "Error: no teacher 'ghost' (teachers: none yet)"),
        (["reset", "ghost"], "Error: no teacher 'ghost'"),
    ],
)
def test_teachers_errors(state: Path, args: list[str], message: str) -> None:
    result = run("teachers", *args, "--state-dir", str(state))
    assert result.exit_code == 1, result.output
    assert message in result.output


def test_check_explains_the_teacher_tier(state: Path, tmp_path: Path) -> None:
    action_id = started_id(run("class", "allow", "games.test", "--group", "students", "--for", "30m",
                               "--state-dir", str(state)))
    policy = str(tmp_path / "policy.yaml")
    text = run("check", "http://games.test/", "--policy", policy, "--client", "10.0.0.9", "--state-dir", str(state))
    assert text.exit_code == 0, text.output
    assert f"ALLOW by rule 'teacher-allow:{action_id}' (tier teacher)" in text.stdout
    assert re.search(rf"  teacher   allow games.test for group students, by admin, until \S+ \S+ "
                     rf"\(class action {action_id}\)", text.stdout), text.stdout
    as_json = json.loads(run("check", "http://games.test/", "--policy", policy, "--client", "10.0.0.9",
                             "--state-dir", str(state), "--json").stdout)
    assert (as_json["tier"], as_json["class_action"]["id"], as_json["class_action"]["by"]) == (
        "teacher", action_id, "admin")
    # Another group, or without the state dir: the policy's own decision.
    other = json.loads(run("check", "http://games.test/", "--policy", policy, "--client", "10.1.0.9",
                           "--state-dir", str(state), "--json").stdout)
    assert (other["tier"], other["class_action"]) == ("department", None)
    plain = json.loads(run("check", "http://games.test/", "--policy", policy, "--client", "10.0.0.9", "--json").stdout)
    assert plain["tier"] == "department"


def test_check_with_a_broken_store(state: Path, tmp_path: Path) -> None:
    (state / FILE).write_text("{", encoding="utf-8")
    result = run("check", "http://games.test/", "--policy", str(tmp_path / "policy.yaml"), "--state-dir", str(state))
    assert result.exit_code == 1 and f"Error: {state / FILE}: Expecting property name" in result.output
