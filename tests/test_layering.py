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
            names.update(_package(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "classgate":  # from classgate import metrics
                names.update(alias.name for alias in node.names)
            else:
                names.add(_package(node.module))
    return names


def _package(module: str) -> str:
    """Our package (`classgate.proxy.addons` -> `proxy`), or the third-party top-level name."""
    parts = module.split(".")
    return parts[1] if parts[0] == "classgate" and len(parts) > 1 else parts[0]


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


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_our_packages_are_imported_under_the_classgate_namespace(package: str) -> None:
    """`import proxy` would find PyPI's proxy.py (or this checkout by accident): always `classgate.proxy`."""
    bare: list[str] = []
    for folder in ("policies", "proxy", "metrics", "agent", "tests", "bench"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                           else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                           else [])
                bare += [f"{path.relative_to(ROOT)}:{node.lineno}: {m}" for m in modules
                         if m.split(".")[0] == package]
    assert not bare, f"bare imports of {package} (write classgate.{package}):\n" + "\n".join(bare)
