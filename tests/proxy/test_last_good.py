"""A gateway always starts: a policy that does not validate at start falls back to the last good one, loudly."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from classgate.policies import PolicyError
from classgate.proxy.last_good import LastGood
from classgate.proxy.metric_labels import gateway_metrics
from classgate.proxy.policy_holder import PolicyHolder
from tests.proxy.proxytest_support import TEST_POLICY

BROKEN = {
    "a YAML error": TEST_POLICY.replace("rules:\n", "rules:\n\t"),
    "an unknown key": TEST_POLICY.replace("default: allow", "defualt: allow"),
    "a missing list": TEST_POLICY.replace("social:   {domains: [social.test]}", "social:   {include: [nosuch/x]}"),
    "an empty file": "",
}


def holder(policy: Path, state: Path) -> PolicyHolder:
    return PolicyHolder(policy, cache_dir=state / "compiled", metrics=gateway_metrics(process_metrics=False),
                        last_good=LastGood(state))


@pytest.fixture
def started(tmp_path) -> tuple[Path, Path, str]:
    """A gateway that ran once with a good policy: (policy file, state dir, that policy's version)."""
    policy, state = tmp_path / "policy.yaml", tmp_path / "state"
    policy.write_text(TEST_POLICY, encoding="utf-8")
    first = holder(policy, state)
    good = first.load()
    assert first.fallback is None
    return policy, state, good.version


@pytest.mark.parametrize("broken", BROKEN.values(), ids=list(BROKEN))
def test_a_start_with_a_broken_policy_enforces_the_last_good_one(started, broken, caplog):
    policy_file, state, good_version = started
    policy_file.write_text(broken, encoding="utf-8")
    h = holder(policy_file, state)
    with caplog.at_level(logging.ERROR):
        policy = h.load()
    assert policy.version == good_version
    assert policy.decide("http://blocked.test/").action == "block"  # the old rules, whole
    assert h.fallback is not None and h.fallback.problems
    assert h.fallback.kept.version == good_version
    assert "LAST GOOD" in caplog.text and str(policy_file) in caplog.text
    assert h.metrics is not None
    assert h.metrics.registry.get_sample_value("classgate_policy_fallback") == 1


def test_the_last_good_policy_needs_no_list_file_it_was_compiled_from(tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "casinos").write_text("casino.test\n")
    policy, state = tmp_path / "policy.yaml", tmp_path / "state"
    text = TEST_POLICY.replace("categories:\n", "sources:\n  own: {format: domains, path: lists/casinos}\ncategories:\n"
                               ).replace("gambling: {domains: [blocked.test]}", "gambling: {include: [own]}")
    policy.write_text(text, encoding="utf-8")
    holder(policy, state).load()
    (lists / "casinos").unlink()  # the list is gone: the configured policy cannot compile
    h = holder(policy, state)
    p = h.load()
    assert h.fallback is not None and "casinos" in " ".join(h.fallback.problems)
    assert p.decide("http://casino.test/").action == "block"  # still from the kept compiled index


def test_without_a_last_good_policy_the_start_fails_as_before(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(BROKEN["an unknown key"], encoding="utf-8")
    with pytest.raises(PolicyError, match="defualt"):
        holder(policy, tmp_path / "state").load()


def test_a_fixed_policy_ends_the_fallback_and_becomes_the_last_good(started):
    policy_file, state, good_version = started
    policy_file.write_text(BROKEN["an unknown key"], encoding="utf-8")
    h = holder(policy_file, state)
    h.load()
    assert h.fallback is not None
    policy_file.write_text(TEST_POLICY.replace("[blocked.test]", "[blocked.test, more.test]"), encoding="utf-8")
    assert asyncio.run(h.reload())
    assert h.fallback is None
    assert h.metrics is not None and h.metrics.registry.get_sample_value("classgate_policy_fallback") == 0
    kept = LastGood(state).load()
    assert kept is not None and kept[0].version != good_version
    assert kept[0].decide("http://more.test/").action == "block"


def test_a_damaged_last_good_copy_is_no_fallback(started):
    policy_file, state, _ = started
    (state / "last-good" / "index.cgidx").write_bytes(b"not an index")
    policy_file.write_text(BROKEN["an unknown key"], encoding="utf-8")
    with pytest.raises(PolicyError):
        holder(policy_file, state).load()
