"""The Grafana dashboard: committed JSON == generator output, and the rules every panel follows."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest

from tests.metrics.metrics_testlib import REPO

GRAFANA = REPO / "deploy" / "grafana"


def load_generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("build_dashboard", GRAFANA / "build_dashboard.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


DOC = json.loads((GRAFANA / "classgate.json").read_text(encoding="utf-8"))
PANELS = [p for p in DOC["panels"] if p["type"] != "row"]


def test_committed_json_is_the_generator_output() -> None:
    assert (GRAFANA / "classgate.json").read_text(encoding="utf-8") == load_generator().render(), (
        "run .venv/bin/python deploy/grafana/build_dashboard.py and commit classgate.json"
    )


def test_variables() -> None:
    variables = {v["name"]: v for v in DOC["templating"]["list"]}
    assert (
        variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    )
    for name in ("school", "instance"):
        assert variables[name]["includeAll"] and variables[name]["allValue"] == ".*"


@pytest.mark.parametrize("panel", PANELS, ids=[p["title"] for p in PANELS])
def test_panel_rules(panel: dict) -> None:  # type: ignore[type-arg]
    vietnamese, _, english = panel["title"].partition(" / ")
    assert vietnamese and english, "titles are 'Vietnamese / English'"
    assert panel["description"]
    assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    for target in panel["targets"]:
        assert target["datasource"]["uid"] == "${datasource}"
        expr = target["expr"]
        # Every selector is limited to the chosen schools and gateways.
        for selector in re.findall(r"[a-z_:]+\{[^}]*\}", expr):
            assert 'school=~"$school"' in selector and 'instance=~"$instance"' in selector, selector
        assert not re.search(r"\b(client|url|host|domain)\b", expr)


def test_layout_does_not_overlap() -> None:
    taken: set[tuple[int, int]] = set()
    for p in DOC["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & taken, p["title"]
        taken |= cells
