"""The packages depend one way: agent -> proxy, metrics, policies; proxy -> policies, metrics.

policies/ and metrics/ import no sibling, and policies/ never imports mitmproxy, so `classgate check`
and the tests can use the engine without a proxy.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"policies", "proxy", "agent", "metrics"}

ALLOWED = {
    "policies": set(),
    "metrics": set(),
    "proxy": {"policies", "metrics"},
    "agent": {"policies", "metrics", "proxy"},
}
FORBIDDEN_THIRD_PARTY = {"policies": {"mitmproxy"}, "metrics": {"mitmproxy"}}


def imported_top_level_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_point_one_way(package: str) -> None:
    wrong: list[str] = []
    for path in sorted((ROOT / package).rglob("*.py")):
        names = imported_top_level_names(path)
        for name in sorted((names & OURS) - {package} - ALLOWED[package]):
            wrong.append(f"{path.relative_to(ROOT)} imports {name}")
        for name in sorted(names & FORBIDDEN_THIRD_PARTY.get(package, set())):
            wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)
