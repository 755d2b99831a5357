"""What is installed: every package folder is in pyproject's list, and every public name can be imported."""

from __future__ import annotations

import importlib
import pkgutil
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("policies", "proxy", "metrics", "agent")
# Scripts that do their work on import (mitmdump loads them by path): not libraries to import here.
SCRIPTS = {"classgate.agent.mitmdump_script"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_every_package_folder_is_installed() -> None:
    setuptools = _pyproject()["tool"]["setuptools"]
    folders = {
        "classgate." + ".".join(init.parent.relative_to(ROOT).parts)
        for package in PACKAGES
        for init in (ROOT / package).rglob("__init__.py")
    }
    assert folders == set(setuptools["packages"]), "pyproject.toml [tool.setuptools] packages is out of date"
    assert setuptools["package-dir"] == {f"classgate.{p}": p for p in PACKAGES}


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        module = importlib.import_module(f"classgate.{package}")
        names.append(module.__name__)
        names += [info.name for info in pkgutil.walk_packages(module.__path__, module.__name__ + ".")]
    return sorted(set(names) - SCRIPTS)


@pytest.mark.parametrize("module_name", _modules())
def test_every_name_in_all_can_be_imported(module_name: str) -> None:
    module = importlib.import_module(module_name)
    missing = [name for name in getattr(module, "__all__", ()) if not hasattr(module, name)]
    assert not missing, f"{module_name}.__all__ names what it does not have: {missing}"
    for name in getattr(module, "__all__", ()):
        exec(f"from {module_name} import {name}", {})  # noqa: S102 - the import statement users write
