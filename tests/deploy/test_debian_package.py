"""deploy/debian/: the .deb builds from this repository, installs on this machine with dpkg, runs from
/opt/classgate, upgrades keeping /etc and the state directory, and `dpkg -r` / `dpkg --purge` leave what
they should. The package is always purged at the end.

Real parts only: build-deb (pip wheels, the venv, dpkg-deb), dpkg's maintainer scripts, systemd-sysusers.
This machine keeps the system user `classgate` afterwards (a purge leaves system users, as Debian does).
"""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.deploy.deploy_helpers import DEPLOY, REPO, need_root, need_tool

BUILD = DEPLOY / "debian" / "build-deb"
PREFIX = Path("/opt/classgate")
STATE = Path("/var/lib/classgate")
ETC = Path("/etc/classgate")
DEFAULTS = Path("/etc/default/classgate")
SAMPLE = PREFIX / "share" / "samples" / "department.yaml"
CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}

UNITS = sorted(p for p in (DEPLOY / "systemd").iterdir() if p.suffix in (".service", ".timer"))
NEEDS_OPTIONS = [u for u in UNITS if "EnvironmentFile=/etc/default/classgate\n" in u.read_text()]

# What the package installs, and from where in the repository (byte for byte): every unit, and beside
# each one that reads /etc/default/classgate the condition that it exists.
SHIPPED = [
    *((f"/lib/systemd/system/{unit.name}", f"deploy/systemd/{unit.name}") for unit in UNITS),
    *((f"/lib/systemd/system/{unit.name}.d/debian-package.conf", "deploy/debian/unit-condition.conf")
      for unit in NEEDS_OPTIONS),
    ("/usr/lib/sysusers.d/classgate.conf", "deploy/systemd/classgate.sysusers"),
    ("/etc/classgate/nftables/classgate.nft", "deploy/nftables/classgate.nft"),
    ("/etc/classgate/nftables/settings.nft", "deploy/nftables/settings.nft"),
    ("/opt/classgate/share/classgate.default", "deploy/systemd/classgate.default"),
    ("/opt/classgate/share/doc/deploy.md", "docs/deploy.md"),
    ("/opt/classgate/share/samples/department.yaml", "policies/samples/department.yaml"),
]
CONFFILES = {"/etc/classgate/nftables/classgate.nft", "/etc/classgate/nftables/settings.nft"}


def run(argv: list[str | Path], timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout,
                            env=CLEAN_ENV, cwd="/", check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{argv} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def package_status() -> str:
    """dpkg's status of the classgate package ("install ok installed", "deinstall ok config-files"), or ""."""
    result = run(["dpkg-query", "-W", "-f=${Status}", "classgate"], check=False)
    return result.stdout.strip() if result.returncode == 0 else ""


def repack(deb: Path, version: str, work: Path) -> Path:
    """The same package under a newer version: what an upgrade installs."""
    tree = work / "repack"
    run(["dpkg-deb", "-R", deb, tree])
    control = tree / "DEBIAN" / "control"
    control.write_text("".join(f"Version: {version}\n" if line.startswith("Version:") else line
                               for line in control.read_text().splitlines(keepends=True)))
    out = work / f"classgate_{version}.deb"
    run(["dpkg-deb", "--root-owner-group", "-Znone", "--build", tree, out])
    shutil.rmtree(tree)
    return out


@pytest.fixture
def machine() -> None:
    need_tool("dpkg-deb", "dpkg")
    need_tool("systemd-sysusers", "systemd")
    need_root("dpkg installs the package system-wide")
    if not Path("/usr/bin/python3").exists() or run(["/usr/bin/python3", "-c", "import venv, ensurepip"],
                                                    check=False).returncode:
        pytest.skip("the package's venv is built on Debian's python3 with venv (package python3-venv)")
    if package_status():
        pytest.skip(f"a classgate package is on this machine already ({package_status()}): not replacing it")
    present = [p for p in (PREFIX, STATE, ETC, DEFAULTS) if p.exists()]
    if present:
        pytest.skip(f"{', '.join(map(str, present))} exist (an install by hand?): the test would remove them")


@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_build_install_upgrade_remove_purge(machine: None, tmp_path: Path) -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    built = run([BUILD, "--out", tmp_path, "--work", tmp_path / "work", "--compress", "gzip"], timeout=600)
    deb = Path(built.stdout.strip().splitlines()[-1])
    assert {u.name for u in NEEDS_OPTIONS} >= {"classgate.service", "classgate-sync.service"}
    assert deb.name == f"classgate_{version}-1_{run(['dpkg', '--print-architecture']).stdout.strip()}.deb"
    try:
        run(["dpkg", "-i", deb])
        assert package_status() == "install ok installed"
        for installed, source in SHIPPED:
            assert Path(installed).read_bytes() == (REPO / source).read_bytes(), installed
        conffiles = {line.split()[0] for line in run(["dpkg-query", "-W", "-f=${Conffiles}", "classgate"]
                                                     ).stdout.splitlines() if line.strip()}
        assert conffiles == CONFFILES
        assert not DEFAULTS.exists()  # nothing starts: the admin writes it when the policy is set
        owner = run(["stat", "-c", "%U:%G %a", STATE]).stdout.split()
        assert owner == ["classgate:classgate", "750"]
        # The installed units with their drop-ins, against the installed program and user.
        verify = run(["systemd-analyze", "verify", *(unit.name for unit in UNITS)], check=False)
        assert verify.returncode == 0 and verify.stderr.strip() == "", verify.stderr
        for unit in NEEDS_OPTIONS:  # what systemd reads for the unit: the file and its drop-in
            merged = run(["systemd-analyze", "cat-config", f"systemd/system/{unit.name}"]).stdout
            assert "\nConditionPathExists=/etc/default/classgate\n" in merged, unit.name

        # The program runs from the package alone: a clean environment, nothing of this checkout.
        assert run([PREFIX / "bin" / "classgate", "--version"]).stdout.strip() == f"classgate, version {version}"
        valid = run([PREFIX / "bin" / "classgate", "validate", SAMPLE], check=False)
        assert valid.returncode == 0, valid.stdout + valid.stderr
        broken = tmp_path / "broken.yaml"
        broken.write_text("classgate: 1\nname: t\ndefault: explode\n")
        invalid = run([PREFIX / "bin" / "classgate", "validate", broken], check=False)
        assert invalid.returncode == 1 and f"{broken}:3:" in invalid.stdout + invalid.stderr
        # The proxy side loads on Debian's python3.11 too (mitmproxy, its Rust parts, cryptography).
        run([PREFIX / "bin" / "python", "-c", "import classgate.agent.gateway, mitmproxy_rs"])
        # Running it wrote nothing into /opt/classgate (its bytecode came compiled), and changed no file.
        on_disk = {str(p) for p in PREFIX.rglob("*")}
        listed = set(run(["dpkg-query", "-L", "classgate"]).stdout.split())
        assert on_disk - listed == set()
        assert run(["dpkg", "--verify", "classgate"], check=False).stdout == ""

        # The admin's state and settings, then an upgrade to a newer revision.
        (STATE / "ca").mkdir()
        (STATE / "ca" / "mitmproxy-ca.pem").write_text("the school CA\n")
        settings = ETC / "nftables" / "settings.nft"
        edited = settings.read_text() + "# LAN_IF edited by the admin\n"
        settings.write_text(edited)
        DEFAULTS.write_text((PREFIX / "share" / "classgate.default").read_text())
        (ETC / "policy.yaml").write_text(SAMPLE.read_text())
        newer = repack(deb, f"{version}-2", tmp_path)
        run(["dpkg", "-i", "--force-confold", newer])
        assert run(["dpkg-query", "-W", "-f=${Version}", "classgate"]).stdout == f"{version}-2"
        assert (STATE / "ca" / "mitmproxy-ca.pem").read_text() == "the school CA\n"
        assert settings.read_text() == edited
        assert DEFAULTS.exists() and (ETC / "policy.yaml").exists()
        assert run(["stat", "-c", "%U:%G %a", STATE]).stdout.split() == ["classgate:classgate", "750"]

        run(["dpkg", "-r", "classgate"])
        assert package_status() == "deinstall ok config-files"
        assert not PREFIX.exists() and not Path("/lib/systemd/system/classgate.service").exists()
        assert (STATE / "ca" / "mitmproxy-ca.pem").exists() and settings.read_text() == edited

        run(["dpkg", "--purge", "classgate"])
        assert package_status() == ""
        assert not STATE.exists() and not DEFAULTS.exists() and not settings.exists()
        assert (ETC / "policy.yaml").exists()  # the admin's own file is theirs
    finally:
        if package_status():
            run(["dpkg", "--purge", "classgate"], check=False)
        shutil.rmtree(ETC, ignore_errors=True)  # absent before the test (see `machine`)
        DEFAULTS.unlink(missing_ok=True)
        for leftover in (PREFIX, STATE):
            shutil.rmtree(leftover, ignore_errors=True)
