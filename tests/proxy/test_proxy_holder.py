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


def _edit_while_reading(monkeypatch, policy_file) -> None:
    """The admin saves the policy file just after the holder has read it (the load is still running)."""
    import classgate.proxy.policy_holder as holder_module

    real = holder_module.load_policy

    def load_then_edit(*args, **kwargs):
        policy = real(*args, **kwargs)
        policy_file.write_text(TEST_POLICY.replace("[blocked.test]", "[blocked.test, edited.test]"),
                               encoding="utf-8")
        return policy

    monkeypatch.setattr(holder_module, "load_policy", load_then_edit)


@pytest.mark.parametrize("how", ["load", "reload"])
def test_an_edit_made_while_the_policy_is_read_is_a_change_to_watch(tmp_path, policy_file, monkeypatch, how):
    """The baseline is the files as read (proxy/policy_files.py), not as they are once the load is done: a worker
    still starting when the admin saves would otherwise enforce the old policy until the next edit."""
    from classgate.proxy.policy_files import snapshot

    h = PolicyHolder(policy_file, cache_dir=tmp_path / "compiled", isolate_compile=False)
    if how == "reload":
        h.load()
        policy_file.write_text(TEST_POLICY.replace("[blocked.test]", "[blocked.test, first.test]"), encoding="utf-8")
    _edit_while_reading(monkeypatch, policy_file)
    if how == "load":
        h.load()
    else:
        assert asyncio.run(h.reload()) is True
    assert h.policy.decide("http://edited.test/", client="127.0.0.3").action == "allow"  # read before the edit
    assert h.files_as_loaded and snapshot(h.watched_paths()) != h.files_as_loaded


def test_files_as_loaded_equal_the_files_when_nothing_changed(tmp_path, policy_file):
    from classgate.proxy.policy_files import snapshot

    h = PolicyHolder(policy_file, cache_dir=tmp_path / "compiled", isolate_compile=False)
    h.load()
    assert snapshot(h.watched_paths()) == h.files_as_loaded  # no reload for nothing
