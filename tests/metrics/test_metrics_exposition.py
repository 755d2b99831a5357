"""The exposition format, byte for byte against a golden file, and linted by promtool.

Regenerate the golden file after an intended change with:
    CLASSGATE_REGEN_GOLDEN=1 .venv/bin/pytest tests/metrics/test_metrics_exposition.py
and review the diff: every new series is a cost for 3,000 schools (docs/metrics.md, sizing).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from classgate.metrics import Metrics
from classgate.proxy.metric_labels import gateway_metrics
from tests.metrics.metrics_testlib import PROMTOOL, need_tool

GOLDEN = Path(__file__).with_name("golden_exposition.txt")


def normalised(text: str) -> str:
    # The build line depends on the installed classgate and Python; everything else is deterministic.
    return re.sub(r"^classgate_build_info\{.*\} ", "classgate_build_info{<build>} ", text, flags=re.MULTILINE)


def test_exposition_matches_golden(fed_metrics: Metrics) -> None:
    text = normalised(generate_latest(fed_metrics.registry).decode())
    if os.environ.get("CLASSGATE_REGEN_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), "exposition changed: see the module docstring to regenerate"


def promtool_check(text: bytes) -> tuple[int, str]:
    result = subprocess.run(
        [need_tool(PROMTOOL), "check", "metrics"], input=text, capture_output=True, timeout=30, check=False
    )
    return result.returncode, (result.stdout + result.stderr).decode().strip()


def test_promtool_check_metrics_is_clean(fed_metrics: Metrics) -> None:
    full = gateway_metrics()  # fresh, with the process collector, as `classgate run` starts
    for registry in (fed_metrics.registry, full.registry):
        assert promtool_check(generate_latest(registry)) == (0, "")


def test_promtool_would_catch_a_bad_name() -> None:
    """The lint above can fail: promtool flags a counter without `_total`."""
    bad = b"# HELP classgate_requests Requests.\n# TYPE classgate_requests counter\nclassgate_requests 1\n"
    code, output = promtool_check(bad)
    assert code != 0 and "_total" in output


def test_openmetrics_output_parses(fed_metrics: Metrics) -> None:
    """Prometheus asks for OpenMetrics first; that rendering must be valid too."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    text = generate_openmetrics(fed_metrics.registry).decode()
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {"classgate_requests", "classgate_decision_duration_seconds", "classgate_policy_info"} <= names


def test_no_label_value_outside_the_bounded_sets(fed_metrics: Metrics) -> None:
    text = generate_latest(fed_metrics.registry).decode()
    for forbidden in (
        "www.not-a-category.com",
        "10.0.0.9",
        "made-up-tier",
        "quantum",
        "somewhere-new",
        "roblox",
    ):
        assert forbidden not in text
