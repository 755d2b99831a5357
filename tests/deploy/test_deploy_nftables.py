"""deploy/nftables/: the shipped ruleset is valid nft, reloads in place, and rejects bad settings."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.deploy.deploy_helpers import DEPLOY, need_root, need_tool
from tests.deploy.schoolnet import NetnsUnavailable, SchoolNetwork

RULESET = DEPLOY / "nftables" / "classgate.nft"
SETTINGS = DEPLOY / "nftables" / "settings.nft"


def check(settings_dir: Path) -> subprocess.CompletedProcess:
    """`nft -c`: parse and evaluate against the kernel without changing anything."""
    nft = need_tool("nft", "nftables")
    need_root("nft -c talks to the kernel's netfilter")
    return subprocess.run(
        [nft, "-c", "-I", str(settings_dir), "-f", str(RULESET)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_shipped_ruleset_with_shipped_settings_is_valid(tmp_path: Path) -> None:
    (tmp_path / "settings.nft").write_text(SETTINGS.read_text())
    result = check(tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ('define LAN_IF = "eth1"\ndefine PROXY_PORT = 8080\n', "DNS_PORT"),  # a setting left out
        ('define LAN_IF = "eth1"\ndefine PROXY_PORT = proxy\ndefine DNS_PORT = 53\n', "proxy"),
        ('define LAN_IF = "eth1"\ndefine PROXY_PORT = 70000\ndefine DNS_PORT = 53\n', "70000"),
        (
            'define LAN_IF = "eth1"\ndefine LAN_IF = "eth2"\ndefine PROXY_PORT = 8080\ndefine DNS_PORT = 53\n',
            "redefinition",
        ),
    ],
)
def test_bad_settings_are_refused_with_the_reason(tmp_path: Path, settings: str, error: str) -> None:
    (tmp_path / "settings.nft").write_text(settings)
    result = check(tmp_path)
    assert result.returncode != 0
    assert error in result.stderr


def test_missing_settings_file_is_refused(tmp_path: Path) -> None:
    result = check(tmp_path)
    assert result.returncode != 0 and "settings.nft" in result.stderr


def chains(listing: str) -> dict[str, list[dict]]:
    """{chain name: [rule expressions]} from `nft -j list table`."""
    out: dict[str, list[dict]] = {}
    for item in json.loads(listing)["nftables"]:
        if "chain" in item:
            out.setdefault(item["chain"]["name"], [])
        if "rule" in item:
            out.setdefault(item["rule"]["chain"], []).append(item["rule"]["expr"])
    return out


def test_loading_twice_replaces_the_table_and_leaves_other_tables_alone(tmp_path: Path) -> None:
    need_tool("nft", "nftables")
    need_root("rules are loaded into a network namespace")
    (tmp_path / "settings.nft").write_text(SETTINGS.read_text())
    (tmp_path / "doh-blocklist.nft").write_text("add element inet classgate doh_ipv4 { 192.0.2.53 }\n")
    try:
        with SchoolNetwork() as net:
            # The admin's own firewall, which must survive our loads.
            net.run(net.gateway, ["nft", "add table inet admin"])
            net.run(
                net.gateway, ["nft", "add chain inet admin input { type filter hook input priority 0 ; }"]
            )
            for _ in range(2):
                net.run(net.gateway, ["nft", "-I", str(tmp_path), "-f", str(RULESET)])
            tables = net.run(net.gateway, ["nft", "list", "tables"]).stdout.split("\n")
            listing = net.run(net.gateway, ["nft", "-j", "list", "table", "inet", "classgate"]).stdout
    except NetnsUnavailable as exc:
        pytest.skip(f"network namespaces unavailable: {exc}")
    assert [t for t in tables if t] == ["table inet admin", "table inet classgate"]
    rules = chains(listing)
    assert set(rules) == {"prerouting", "input", "forward"}
    # once, not twice
    assert (len(rules["prerouting"]), len(rules["input"]), len(rules["forward"])) == (7, 2, 12)
    assert "192.0.2.53" in listing  # the DoH elements file was included
