"""`classgate lists fetch --policy`: the CLI's every exit path, the fetch -> validate -> publish pipeline, the
plan read from the policy, and the Department's lists timer. Real lists from a real local server."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from classgate.agent.commands.lists import lists
from classgate.agent.department.errors import DepartmentError
from classgate.agent.department.subscriptions import read_subscriptions
from classgate.policies.errors import PolicyError
from tests.agent.lists_subscribe_support import GAMBLING, start_mirror, start_upstream, write_policy
from tests.agent.lists_upstream import ListUpstream
from tests.agent.sync_helpers import cli

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "department"


@pytest.fixture
def upstream() -> Iterator[ListUpstream]:
    server = start_upstream()
    yield server
    server.close()


@pytest.fixture
def policy(tmp_path: Path, upstream: ListUpstream) -> Path:
    return write_policy(tmp_path, upstream.url)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(lists, ["fetch", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


HALF = b"".join((GAMBLING / "domain.txt").read_bytes().splitlines(keepends=True)[:30_000]) \
    if (GAMBLING / "domain.txt").is_file() else b""

# (case, arguments after `lists fetch` ({P}: the policy), upstream change before, exit code, output fragments)
CLI_CASES = [
    ("everything", ["--policy", "{P}"], None, 0,
     ["hostsvn_gambling: updated +65758 -0 (65758 entries)", "ut1/bank: updated +6646 -0",
      "lists: 5 updated, 0 unchanged, 0 refused, 0 failed", "CC BY-SA 4.0"]),
    ("one-source", ["hostsvn_gambling_vn", "--policy", "{P}"], None, 0,
     ["hostsvn_gambling_vn: updated +3747 -0", "lists: 1 updated, 0 unchanged"]),
    ("a-ut1-list", ["ut1/bank", "--policy", "{P}"], None, 0, ["ut1/bank: updated", "lists: 1 updated"]),
    ("refused", ["hostsvn_gambling", "--policy", "{P}"], HALF, 1,
     ["hostsvn_gambling: REFUSED: would shrink from 65758 to 30000 entries", "lists: 0 updated, 0 unchanged, 1 refused",
      "Error: 1 list not updated (see above); the old version is kept"]),
    ("refused-then-forced", ["hostsvn_gambling", "--policy", "{P}", "--force"], HALF, 0,
     ["hostsvn_gambling: updated +0 -35758 (30000 entries)"]),
    ("a-wider-limit", ["hostsvn_gambling", "--policy", "{P}", "--max-shrink", "60"], HALF, 0,
     ["hostsvn_gambling: updated +0 -35758"]),
    ("failed", ["hostsvn_gambling", "--policy", "{P}"], "500", 1, ["FAILED: download failed", "HTTP 500",
                                                                    "1 list not updated"]),
    ("unknown-name", ["hostsvn_gamblin", "--policy", "{P}"], None, 1,
     ["no source or list 'hostsvn_gamblin' in the policy; did you mean 'hostsvn_gambling'?"]),
    ("a-source-without-url", ["own", "--policy", "{P}"], None, 1, ["source 'own' has no url"]),
    ("a-list-not-included", ["ut1/dating", "--policy", "{P}"], None, 1,
     ["'ut1/dating' is not a list the policy's categories include from 'ut1'"]),
    ("neither-policy-nor-ut1", ["hostsvn_gambling"], None, 2, ["give --policy FILE"]),
    ("one-off-options-with-a-policy", ["--policy", "{P}", "--url", "http://x/"], None, 2,
     ["--url and --categories belong to the one-off form"]),
    ("a-mirror-that-is-no-url", ["--policy", "{P}", "--mirror", "/srv/mirror"], None, 2,
     ["expected an http:// or https:// address"]),
    ("a-bad-shrink-limit", ["--policy", "{P}", "--max-shrink", "120"], None, 2, ["--max-shrink"]),
]


@pytest.mark.parametrize(("case", "args", "change", "code", "expect"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli(policy, upstream, case, args, change, code, expect):
    if isinstance(change, bytes):
        assert run("hostsvn_gambling", "--policy", str(policy))[0] == 0
        upstream.serve("/hostsvn/gambling/domain.txt", change)
    elif change is not None:
        upstream.on("/hostsvn/gambling/domain.txt", change)
    exit_code, output = run(*[a.replace("{P}", str(policy)) for a in args])
    assert exit_code == code, output
    for fragment in expect:
        assert fragment in output


def test_a_policy_with_a_shape_error_is_reported_with_its_position(tmp_path, upstream):
    path = write_policy(tmp_path, upstream.url, "classgate: 1\nname: t\nsources:\n  s: {format: domains, "
                                                "path: x.txt, url: ftp://lists.example/x}\n")
    exit_code, output = run("--policy", str(path))
    assert exit_code == 1
    assert f"{path}:4:42: 'ftp://lists.example/x' is not valid here; a source url starts with https://" in output


# (case, policy text, names, mirror, the plan: label -> (kind, urls)) or an error message fragment
PLAN_HEAD = "classgate: 1\nname: plan\nsources:\n"
PLAN_CASES = [
    ("ut1-lists-as-the-categories-include-them-aliases-as-ut1-names",
     PLAN_HEAD + "  ut1: {format: ut1, url: 'https://u.example/dl/', path: lists/ut1}\n"
                 "categories:\n  a: {include: [ut1/porn, ut1/gambling]}\n  b: {include: [ut1/gambling]}\n",
     (), None, {"ut1/adult": ("ut1_archive", ["https://u.example/dl/adult.tar.gz"]),
                "ut1/gambling": ("ut1_archive", ["https://u.example/dl/gambling.tar.gz"])}),
    ("sources-without-url-are-not-fetched",
     PLAN_HEAD + "  mine: {format: hosts, path: mine.hosts}\n"
                 "  vn: {format: hosts, url: 'https://h.example/hosts-VN', path: lists/vn.hosts}\n",
     (), None, {"vn": ("file", ["https://h.example/hosts-VN"])}),
    ("a-mirror-serves-the-policy-folder-layout",
     PLAN_HEAD + "  ut1: {format: ut1, url: 'https://u.example/dl', path: lists/ut1}\n"
                 "  vn: {format: domains, url: 'https://h.example/d.txt', path: lists/hostsvn/d.txt}\n"
                 "categories:\n  a: {include: [ut1/bank]}\n",
     (), "http://mirror.lan/cg/", {"ut1/bank": ("ut1_files", ["http://mirror.lan/cg/lists/ut1/bank/domains",
                                                              "http://mirror.lan/cg/lists/ut1/bank/urls"]),
                                   "vn": ("file", ["http://mirror.lan/cg/lists/hostsvn/d.txt"])}),
    ("names-choose-sources-and-lists",
     PLAN_HEAD + "  ut1: {format: ut1, url: 'https://u.example/dl', path: lists/ut1}\n"
                 "  vn: {format: domains, url: 'https://h.example/d.txt', path: d.txt}\n"
                 "categories:\n  a: {include: [ut1/bank, ut1/games]}\n",
     ("ut1/games", "vn"), None, {"ut1/games": ("ut1_archive", ["https://u.example/dl/games.tar.gz"]),
                                 "vn": ("file", ["https://h.example/d.txt"])}),
    ("a-mirror-cannot-place-a-path-outside-the-policy-folder",
     PLAN_HEAD + "  vn: {format: domains, url: 'https://h.example/d.txt', path: /srv/lists/d.txt}\n",
     (), "http://mirror.lan/", "its path '/srv/lists/d.txt' is not inside the policy's folder"),
    ("a-url-in-a-ut1-list-name-is-quoted",
     PLAN_HEAD + "  ut1: {format: ut1, url: 'https://u.example/dl', path: lists/ut1}\n"
                 "categories:\n  a: {include: [ut1/audio-video]}\n",
     (), None, {"ut1/audio-video": ("ut1_archive", ["https://u.example/dl/audio-video.tar.gz"])}),
]


@pytest.mark.parametrize(("case", "text", "names", "mirror", "expected"), PLAN_CASES, ids=[c[0] for c in PLAN_CASES])
def test_the_plan_read_from_the_policy(tmp_path, case, text, names, mirror, expected):
    path = tmp_path / "department.yaml"
    path.write_text(text)
    if isinstance(expected, str):
        with pytest.raises(DepartmentError, match=expected):
            read_subscriptions(path, names, mirror)
        return
    plan = read_subscriptions(path, names, mirror)
    assert {s.label: (s.kind, [d.url for d in s.downloads]) for s in plan} == expected
    assert all(not s.target.exists() for s in plan)  # nothing needs to exist before the first fetch


def test_the_plan_refuses_a_policy_it_cannot_read(tmp_path):
    path = tmp_path / "department.yaml"
    path.write_text("classgate: 1\nname: t\nsources: {s: {format: domain, path: x, url: 'https://x/'}}\n")
    with pytest.raises(PolicyError, match="'domain' is not one of ut1, domains, hosts, adblock"):
        read_subscriptions(path)


# --- fetch -> validate -> publish ------------------------------------------------------------------------

@pytest.fixture
def department(tmp_path: Path, upstream: ListUpstream) -> tuple[Path, Path]:
    repo = tmp_path / "dept"
    cli("department", "init", str(repo))
    policy_dir = repo / "policy-vn"  # beside whatever `init` puts in DIR/policy
    policy_dir.mkdir()
    return repo, write_policy(policy_dir, upstream.url)


def publish_run(repo: Path, policy: Path, *extra: str) -> tuple[int, str]:
    return run("--policy", str(policy), "--publish", str(repo), *extra)


def test_publish_only_when_something_changed(department, upstream):
    repo, policy = department
    code, output = publish_run(repo, policy)
    assert code == 0 and "published bundle 2:" in output, output
    code, output = publish_run(repo, policy)
    assert code == 0 and "lists: 0 updated, 5 unchanged" in output
    assert "nothing to publish: the policy's files are those of bundle 2" in output
    upstream.serve("/hostsvn/gambling/hosts-VN", (GAMBLING / "hosts-VN").read_bytes() + b"0.0.0.0 new88.example\n")
    code, output = publish_run(repo, policy)
    assert code == 0 and "hostsvn_gambling_vn: updated +1 -0" in output and "published bundle 3: 1 changed" in output


def test_a_publish_waiting_for_the_offline_targets_key_happens_at_the_next_run(department, upstream):
    repo, policy = department
    offline = repo.parent / "usb-key"
    shutil.move(repo / "keys" / "targets", offline)
    code, output = publish_run(repo, policy)
    assert code == 1 and "lists: 5 updated" in output and "the targets key is kept OFFLINE" in output
    code, output = publish_run(repo, policy)  # nothing new upstream, but the lists still wait
    assert code == 1 and "lists: 0 updated, 5 unchanged" in output and "kept OFFLINE" in output
    shutil.move(offline, repo / "keys" / "targets")
    code, output = publish_run(repo, policy)
    assert code == 0 and "published bundle 2:" in output


def test_a_refused_list_keeps_its_old_version_in_the_next_bundle_and_the_others_are_published(department, upstream):
    repo, policy = department
    assert publish_run(repo, policy)[0] == 0
    upstream.serve("/hostsvn/gambling/domain.txt", HALF)
    upstream.serve("/hostsvn/gambling/hosts-VN", (GAMBLING / "hosts-VN").read_bytes() + b"0.0.0.0 new88.example\n")
    code, output = publish_run(repo, policy)
    assert code == 1
    assert "hostsvn_gambling: REFUSED" in output and "hostsvn_gambling_vn: updated +1 -0" in output
    assert "published bundle 3: 1 changed files" in output
    assert (policy.parent / "lists/hostsvn/gambling/domain.txt").read_bytes() == (GAMBLING / "domain.txt").read_bytes()


def test_a_policy_that_does_not_validate_is_never_published(department):
    repo, policy = department
    policy.write_text(policy.read_text() + "  - {name: broken, action: block, categories: [nosuch]}\n")
    code, output = publish_run(repo, policy)
    assert code == 1 and "lists: 5 updated" in output
    assert "the policy does not validate; nothing was published" in output and "unknown category 'nosuch'" in output
    assert sorted(p.name for p in (repo / "repository" / "metadata").glob("*.targets.json")) == ["1.targets.json"]


def test_a_mirror_feeds_the_pipeline_too(department, upstream, tmp_path):
    repo, policy = department
    mirror = start_mirror(tmp_path)
    try:
        code, output = publish_run(repo, policy, "--mirror", mirror.url)
    finally:
        mirror.close()
    assert code == 0 and "published bundle 2:" in output, output
    assert upstream.requests() == []


@pytest.mark.parametrize("unit", ["classgate-department-lists.service", "classgate-department-lists.timer"])
def test_the_lists_timer_units_verify(unit, tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    for f in DEPLOY.glob("classgate-department-*"):
        shutil.copy(f, tmp_path / f.name)
    result = subprocess.run([analyze, "verify", "--man=no", str(tmp_path / unit)], capture_output=True, text=True,
                            check=False, timeout=60)
    problems = [line for line in result.stderr.splitlines()
                if line.strip() and "Command /usr/local/bin/classgate is not executable" not in line]
    assert not problems, result.stderr


def test_the_lists_unit_runs_fetch_validate_publish_and_the_hourly_refresh_stays_offline():
    lists_unit = (DEPLOY / "classgate-department-lists.service").read_text()
    refresh_unit = (DEPLOY / "classgate-department-refresh.service").read_text()
    def exec_start(unit: str) -> str:
        return next(line for line in unit.splitlines() if line.startswith("ExecStart="))

    assert "lists fetch --policy ${POLICY} --publish /srv/classgate/department" in exec_start(lists_unit)
    assert "department refresh" in exec_start(refresh_unit) and "PrivateNetwork=yes" in refresh_unit
