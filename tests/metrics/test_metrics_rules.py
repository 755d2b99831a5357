"""The shipped Prometheus configuration and rules, checked and unit-tested with Debian's promtool."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.metrics.metrics_testlib import PROMTOOL, REPO, need_tool

PROMETHEUS_DIR = REPO / "deploy" / "prometheus"


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [need_tool(PROMTOOL), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=PROMETHEUS_DIR,
    )


@pytest.mark.parametrize(
    "args",
    [
        ("check", "rules", "rules/classgate-recording.yml", "rules/classgate-alerts.yml"),
        ("check", "config", "department/prometheus.yml"),
        ("check", "config", "--agent", "school/prometheus.yml"),
        ("test", "rules", "tests/classgate-alerts.test.yml", "tests/classgate-slow-alerts.test.yml"),
    ],
    ids=["rules", "department-config", "school-agent-config", "rule-unit-tests"],
)
def test_promtool(args: tuple[str, ...]) -> None:
    result = promtool(*args)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test() -> None:
    import yaml

    alerts = {
        rule["alert"]
        for group in yaml.safe_load((PROMETHEUS_DIR / "rules" / "classgate-alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    tests = [
        test
        for path in sorted((PROMETHEUS_DIR / "tests").glob("*.test.yml"))
        for test in yaml.safe_load(path.read_text())["tests"]
    ]
    tested = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts - tested == set()


def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    """A wrong expectation must make `promtool test rules` fail (so the test above means something)."""
    text = (PROMETHEUS_DIR / "tests" / "classgate-alerts.test.yml").read_text()
    broken = text.replace("severity: critical, job: classgate", "severity: info, job: classgate", 1)
    assert broken != text
    rules = PROMETHEUS_DIR / "rules"
    broken = broken.replace("../rules/", f"{rules}/")
    path = tmp_path / "broken.test.yml"
    path.write_text(broken)
    result = promtool("test", "rules", path)
    assert result.returncode != 0
