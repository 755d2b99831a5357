"""`classgate run` exit paths that end before the proxy starts: clear errors, no tracebacks."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from classgate.agent.cli import main
from classgate.agent.commands.run import sample_policy
from tests.proxy.proxytest_support import TEST_POLICY


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--listen", "nonsense"], 2, "port must be a number"),
        (["--listen", "127.0.0.1:99999"], 2, "between 0 and 65535"),
        (["--metrics", "127.0.0.1:x"], 2, "port must be a number"),
        (["--sync-from", "http://127.0.0.1:1/"], 2, "--sync-from and --trust go together"),
        (["--sync-interval", "60-120"], 2, "need --sync-from"),
        (["--sync-report-to", "http://127.0.0.1:1/"], 2, "need --sync-from"),
        (["--sync-from", "http://127.0.0.1:1/", "--trust", __file__, "--sync-interval", "9-3"], 2,
         "need 0 < MIN <= MAX"),
        (["--sync-from", "http://127.0.0.1:1/", "--trust", __file__, "--sync-interval", "soon"], 2,
         "expected MIN-MAX seconds"),
        (["--set", "no-equals-sign"], 2, "expected OPTION=VALUE"),
        (["--mode", "reverse"], 2, "Invalid value for '--mode'"),
        (["--policy", "/no/such/file.yaml"], 2, "does not exist"),
    ],
)
def test_usage_errors(tmp_path, args, code, message):
    result = CliRunner().invoke(main, ["run", "--state-dir", str(tmp_path), *args])
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_invalid_policy_lists_every_problem(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(TEST_POLICY.replace("default: allow", "default: perhaps")
                      .replace("action: block, categories: [gambling]", "action: block, categories: [nosuch]"),
                      encoding="utf-8")
    result = CliRunner().invoke(main, ["run", "--policy", str(policy), "--state-dir", str(tmp_path / "s"),
                                       "--metrics", "off"])
    assert result.exit_code == 1
    assert "policy cannot be used" in result.output
    assert result.output.count("policy.yaml:") >= 2  # both problems, with file and line
    assert "Traceback" not in result.output


def test_metrics_port_in_use_is_a_clean_error(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["run", "--state-dir", str(tmp_path), "--metrics", f"127.0.0.1:{port}"])
    assert result.exit_code == 1
    assert "cannot serve metrics" in result.output


def test_the_default_policy_is_the_shipped_sample():
    assert sample_policy().is_file()
    assert sample_policy().name == "department.yaml"


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [("300-900", 300.0, 900.0), ("60", 60.0, 60.0), ("0.5-2", 0.5, 2.0)],
)
def test_sync_interval_is_read_as_min_max_seconds(text, low, high):
    from classgate.agent.commands.options import Interval
    from classgate.agent.sync.gateway_addon import poll_settings

    settings = poll_settings(*Interval().convert(text, None, None))
    assert (settings.min_interval, settings.max_interval) == (low, high)
    assert settings.backoff_base <= low <= high <= settings.backoff_max
