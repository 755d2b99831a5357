"""deploy/systemd/: the units pass `systemd-analyze verify`, stay hardened, and use real CLI options."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import click
import pytest

from tests.deploy.deploy_helpers import DEPLOY, VENV_BIN, need_tool

SYSTEMD = DEPLOY / "systemd"
UNITS = ["classgate.service", "classgate-sync.service", "classgate-sync.timer", "classgate-firewall.service"]


@pytest.fixture(scope="module")
def units_here(tmp_path_factory) -> Path:
    """The units with /opt/classgate pointing at this checkout, so verify can find the programs."""
    out = tmp_path_factory.mktemp("units")
    for name in UNITS:
        text = (SYSTEMD / name).read_text().replace("/opt/classgate/bin/", f"{VENV_BIN}/")
        (out / name).write_text(text)
    return out


def test_units_verify_without_a_single_warning(units_here: Path) -> None:
    analyze = need_tool("systemd-analyze", "systemd")
    result = subprocess.run(
        [analyze, "verify", *(f"./{name}" for name in UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=units_here,
        check=False,
    )
    # verify exits 0 on unknown keys and bad values too; the warnings are the verdict.
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


@pytest.mark.parametrize("unit", ["classgate.service", "classgate-sync.service"])
def test_services_are_hardened(units_here: Path, unit: str) -> None:
    analyze = need_tool("systemd-analyze", "systemd")
    result = subprocess.run(
        [analyze, "security", "--offline=yes", "--no-pager", f"./{unit}"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=units_here,
        check=False,
    )
    exposure = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout + result.stderr)
    assert exposure, result.stdout + result.stderr
    # systemd's scale: 0 = fully locked down, 10 = no protection; "OK" is below 2.5 (measured: 1.7).
    assert float(exposure.group(1)) < 2.5


def directives(unit: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in (SYSTEMD / unit).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            values.setdefault(key.strip(), []).append(value.strip())
    return values


@pytest.mark.parametrize(
    ("unit", "key", "expected"),
    [
        ("classgate.service", "CapabilityBoundingSet", [""]),  # transparent mode needs no capability
        ("classgate.service", "AmbientCapabilities", [""]),
        ("classgate.service", "ProtectSystem", ["strict"]),
        ("classgate.service", "StateDirectory", ["classgate"]),
        ("classgate.service", "User", ["classgate"]),
        ("classgate.service", "Restart", ["on-failure"]),
        ("classgate.service", "ExecReload", ["/bin/kill -HUP $MAINPID"]),
        ("classgate-sync.service", "User", ["classgate"]),
        ("classgate-sync.service", "StateDirectory", ["classgate"]),  # the same state as the filter
        ("classgate-sync.service", "CapabilityBoundingSet", [""]),
        ("classgate-sync.timer", "RandomizedDelaySec", ["15min"]),  # thousands of schools, not in step
    ],
)
def test_unit_directive(unit: str, key: str, expected: list[str]) -> None:
    assert directives(unit)[key] == expected


def default_args(variable: str) -> list[str]:
    text = (SYSTEMD / "classgate.default").read_text()
    match = re.search(rf'^{variable}="([^"]*)"', text, re.MULTILINE)
    assert match, f"{variable} missing from classgate.default"
    return shlex.split(match.group(1))


def command_options(path: list[str]) -> set[str]:
    """Every option name the real `classgate <path>` accepts (read from the click command)."""
    from classgate.agent.cli import main

    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        sub = command.commands.get(name)
        assert sub is not None, f"`classgate {' '.join(path)}` does not exist"
        command = sub
    return {opt for param in command.params for opt in getattr(param, "opts", [])}


@pytest.mark.parametrize(
    ("variable", "command", "unit_args"),
    [
        ("CLASSGATE_RUN_ARGS", ["run"], ["--state-dir"]),
        ("CLASSGATE_SYNC_ARGS", ["sync"], ["--state-dir", "--once"]),
    ],
)
def test_environment_file_uses_options_the_cli_has(
    variable: str, command: list[str], unit_args: list[str]
) -> None:
    accepted = command_options(command)
    used = [arg for arg in default_args(variable) if arg.startswith("--")] + unit_args
    assert set(used) <= accepted, f"not options of `classgate {' '.join(command)}`: {set(used) - accepted}"
