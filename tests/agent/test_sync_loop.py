"""Poll scheduling (jitter, backoff), manifest checks, and `classgate sync` as a command."""

from __future__ import annotations

import json
import random

import pytest
from click.testing import CliRunner

from classgate.agent.sync.errors import SyncError
from classgate.agent.sync.loop import PollSchedule, PollSettings
from classgate.agent.sync.verify import parse_manifest
from tests.agent.sync_helpers import closed_port_url

SETTINGS = PollSettings(min_interval=300, max_interval=900, backoff_base=10, backoff_max=3600)


@pytest.mark.parametrize(("failures", "low", "high"), [
    (1, 5, 10),        # first retry: up to the base
    (2, 5, 20),
    (5, 5, 160),
    (9, 5, 2560),
    (10, 5, 3600),     # capped
    (40, 5, 3600),     # stays capped, no overflow
])
def test_backoff_grows_and_is_capped(failures, low, high):
    delays = []
    for seed in range(200):
        schedule = PollSchedule(SETTINGS, random.Random(seed))
        for _ in range(failures):
            delay = schedule.after_failure()
        delays.append(delay)
    assert all(low <= d <= high for d in delays)
    assert max(delays) - min(delays) > (high - low) * 0.5  # jittered across the whole range


def test_success_resets_backoff_and_jitters_between_min_and_max():
    schedule = PollSchedule(SETTINGS, random.Random(1))
    for _ in range(6):
        schedule.after_failure()
    delays = [schedule.after_success() for _ in range(1000)]
    assert schedule.failures == 0 and schedule.after_failure() <= 10
    assert 300 <= min(delays) < 330 and 870 < max(delays) <= 900


def test_a_fleet_rebooted_together_spreads_its_first_poll():
    firsts = sorted(PollSchedule(SETTINGS, random.Random(i)).first_delay() for i in range(3000))
    per_minute = [sum(1 for d in firsts if m * 60 <= d < (m + 1) * 60) for m in range(5)]
    assert all(500 < n < 700 for n in per_minute), per_minute  # ~600 per minute, not 3000 at once


@pytest.mark.parametrize("kwargs", [{"min_interval": 0}, {"min_interval": 10, "max_interval": 5},
                                    {"backoff_base": 0}, {"backoff_base": 100, "backoff_max": 10}])
def test_bad_settings(kwargs):
    with pytest.raises(ValueError):
        PollSettings(**kwargs)


GOOD = {"format": "classgate-bundle/1", "version": 3, "policy": "d.yaml", "files": ["d.yaml", "lists/a/domains"]}


@pytest.mark.parametrize(("change", "message"), [
    ({}, None),
    ({"format": "other"}, "not a classgate-bundle/1"),
    ({"version": 0}, "positive integer"),
    ({"version": "3"}, "positive integer"),
    ({"files": []}, "non-empty list"),
    ({"files": ["d.yaml", "../etc/passwd"]}, "unsafe file name"),
    ({"files": ["d.yaml", "/etc/passwd"]}, "unsafe file name"),
    ({"files": ["d.yaml", "lists/./a"]}, "unsafe file name"),
    ({"files": ["d.yaml", "a\\b"]}, "unsafe file name"),
    ({"files": ["d.yaml", 7]}, "unsafe file name"),
    ({"policy": "other.yaml"}, "policy file is not among"),
])
def test_manifest_checks(change, message):
    data = json.dumps({**GOOD, **change}).encode()
    if message is None:
        assert parse_manifest(data)["version"] == 3
    else:
        with pytest.raises(SyncError, match=message) as e:
            parse_manifest(data)
        assert e.value.reason == "bad_bundle"


def test_sync_command_once(department_template, tmp_path, serve):
    from classgate.agent.commands.sync import sync

    repo = department_template.copy(tmp_path / "d")
    server = serve(repo / "repository")
    trust = str(repo / "repository" / "metadata" / "1.root.json")
    state = tmp_path / "state"
    runner = CliRunner()
    first = runner.invoke(sync, ["--sync-from", server.url, "--trust", trust, "--state-dir", str(state), "--once"])
    assert first.exit_code == 0 and first.output.strip() == "installed bundle 3", first.output
    assert (state / "sync" / "current" / "files" / "department.yaml").is_file()
    again = runner.invoke(sync, ["--sync-from", server.url, "--trust", trust, "--state-dir", str(state), "--once"])
    assert again.exit_code == 0 and "up to date: bundle 3" in again.output, again.output
    down = runner.invoke(sync, ["--sync-from", closed_port_url(), "--trust", trust, "--state-dir", str(state),
                                "--once"])
    assert down.exit_code == 1 and "sync failed (network)" in down.output and "installed bundle: 3" in down.output
    bad = runner.invoke(sync, ["--sync-from", server.url, "--trust", trust, "--state-dir", str(state), "--once",
                               "--sync-interval", "10-5"])
    assert bad.exit_code == 2
    # The old spellings still work for a release, and say so.
    old = runner.invoke(sync, ["--from", server.url, "--trust", trust, "--state-dir", str(state), "--once",
                               "--min-interval", "10", "--max-interval", "20"])
    assert old.exit_code == 0 and "--from is now --sync-from" in old.stderr, old.output
