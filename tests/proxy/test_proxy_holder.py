"""PolicyHolder: load, reload in a child process, reject invalid policies, pin flows."""

from __future__ import annotations

import asyncio

import pytest

from classgate.metrics import Metrics
from classgate.proxy.metric_labels import gateway_metrics
from classgate.proxy.policy_holder import PolicyHolder
from classgate.proxy.precompile import precompile
from tests.proxy.proxytest_support import TEST_POLICY


def sample(m: Metrics, name: str, **labels) -> float:
    return m.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def policy_file(tmp_path):
    p = tmp_path / "policy.yaml"
    p.write_text(TEST_POLICY, encoding="utf-8")
    return p


@pytest.mark.parametrize("isolate", [True, False])
def test_reload_swaps_a_valid_policy(tmp_path, policy_file, isolate):
    m = gateway_metrics()
    h = PolicyHolder(policy_file, cache_dir=tmp_path / "compiled", metrics=m, isolate_compile=isolate)
    first = h.load()
    policy_file.write_text(TEST_POLICY.replace("[blocked.test]", "[blocked.test, more.test]"), encoding="utf-8")
    assert asyncio.run(h.reload()) is True
    assert h.policy is not first and h.generation == 2
    assert h.policy.decide("http://more.test/", client="127.0.0.3").action == "block"
    assert sample(m, "classgate_policy_reloads_total", result="succeeded") == 1


@pytest.mark.parametrize("isolate", [True, False])
@pytest.mark.parametrize(
    "bad",
    ["classgate: 1\nname: [\n", TEST_POLICY.replace("default: allow", "default: maybe")],
)
def test_invalid_reload_keeps_the_running_policy(tmp_path, policy_file, caplog, isolate, bad):
    m = gateway_metrics()
    h = PolicyHolder(policy_file, cache_dir=tmp_path / "compiled", metrics=m, isolate_compile=isolate)
    first = h.load()
    policy_file.write_text(bad, encoding="utf-8")
    assert asyncio.run(h.reload()) is False
    assert h.policy is first and h.generation == 1
    assert "rejected; still enforcing" in caplog.text and "policy.yaml" in caplog.text
    assert sample(m, "classgate_policy_reloads_total", result="rejected") == 1


def test_precompile_child_fills_the_cache_and_reports_problems(tmp_path, policy_file):
    cache = tmp_path / "compiled"
    assert asyncio.run(precompile(policy_file, None, cache)) is None
    assert any(cache.iterdir())  # the compiled index is there for the proxy to load
    policy_file.write_text(TEST_POLICY.replace("default: allow", "default: maybe"), encoding="utf-8")
    problems = asyncio.run(precompile(policy_file, None, cache))
    assert problems and all("policy.yaml" in p for p in problems)


def test_sync_reload_marks_the_source(tmp_path, policy_file):
    other = tmp_path / "bundle-policy.yaml"
    other.write_text(TEST_POLICY, encoding="utf-8")
    h = PolicyHolder(policy_file, cache_dir=tmp_path / "c")
    h.load()
    assert h.source == "file"
    assert asyncio.run(h.reload(policy_path=other)) is True
    assert (h.source, h.policy_path) == ("sync", other)
