"""deploy/systemd/classgate-console.service: verifies cleanly, is hardened, runs beside classgate.service with
the same user and state dir, and its command line is one `classgate console` accepts."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from classgate.agent.cli import main
from tests.deploy.deploy_helpers import DEPLOY, VENV_BIN, need_tool
from tests.deploy.test_deploy_systemd import directives

SYSTEMD = DEPLOY / "systemd"
UNIT = "classgate-console.service"


@pytest.fixture(scope="module")
def unit_here(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("console-unit")
    for name in (UNIT, "classgate.service"):  # After=classgate.service: verify wants to find it
        (out / name).write_text((SYSTEMD / name).read_text().replace("/opt/classgate/bin/", f"{VENV_BIN}/"))
    return out


def _analyze(unit_here: Path, *args: str) -> subprocess.CompletedProcess[str]:
    analyze = need_tool("systemd-analyze", "systemd")
    return subprocess.run([analyze, *args], capture_output=True, text=True, timeout=60, cwd=unit_here, check=False)


def test_the_unit_verifies_without_a_warning(unit_here: Path) -> None:
    result = _analyze(unit_here, "verify", f"./{UNIT}")
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


def test_the_unit_is_hardened(unit_here: Path) -> None:
    result = _analyze(unit_here, "security", "--offline=yes", "--no-pager", f"./{UNIT}")
    exposure = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout + result.stderr)
    assert exposure, result.stdout + result.stderr
    assert float(exposure.group(1)) < 2.5  # systemd's "OK", as classgate.service


@pytest.mark.parametrize("key", ["User", "Group", "StateDirectory"])
def test_the_same_user_and_state_as_the_gateway(key: str) -> None:
    assert directives(UNIT)[key] == directives("classgate.service")[key]


def test_the_command_line_is_one_the_console_accepts() -> None:
    values = directives(UNIT)
    [environment] = values["Environment"]
    name, _, args = environment.strip('"').partition("=")
    assert name == "CLASSGATE_CONSOLE_ARGS"
    [exec_start] = values["ExecStart"]
    argv = shlex.split(exec_start.replace("${STATE_DIRECTORY}", "/var/lib/classgate")
                       .replace("$CLASSGATE_CONSOLE_ARGS", args))
    assert argv[:2] == ["/opt/classgate/bin/classgate", "console"]
    # --help after the options: click still parses the line first, so an unknown option fails here.
    result = CliRunner().invoke(main, [*argv[1:], "--help"])
    assert result.exit_code == 0, result.output
    assert "--metrics" in argv and "127.0.0.1:9741" in argv  # classgate.default's --metrics
