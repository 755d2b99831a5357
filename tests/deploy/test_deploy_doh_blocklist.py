"""deploy/dns/make-doh-blocklist: what it keeps from an admin's list, and that its output loads."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.deploy_helpers import DEPLOY, need_root, need_shared, need_tool
from tests.deploy.schoolnet import NetnsUnavailable, SchoolNetwork

SCRIPT = DEPLOY / "dns" / "make-doh-blocklist"


@pytest.mark.parametrize(
    ("token", "host", "network"),
    [
        ("dns.google", "dns.google", None),
        ("DNS.Google.", "dns.google", None),  # case and the root dot do not matter
        ("*.dns.nextdns.io", "dns.nextdns.io", None),
        ("dns.bücher.example", "dns.xn--bcher-kva.example", None),  # IDN names are blocked in their DNS form
        ("1.1.1.1", None, "1.1.1.1/32"),
        ("104.16.248.0/24", None, "104.16.248.0/24"),
        ("2606:4700:4700::1111", None, "2606:4700:4700::1111/128"),
        ("0.0.0.0", None, None),  # hosts-file sink: never an entry
        ("10.1.2.3", None, None),  # private: blocking it could cut the school LAN off
        ("127.0.0.1", None, None),
        ("fe80::1", None, None),
        ("localhost", None, None),  # one label would block a whole TLD
        ("com", None, None),
        ("-bad-.example", None, None),
        ("1.2.3", None, None),  # a broken address, not a host
        ("a" * 64 + ".example", None, None),  # label over 63 characters
    ],
)
def test_token_is_kept_as(doh_script, token: str, host: str | None, network: str | None) -> None:
    blocklist = doh_script.Blocklist()
    blocklist.add_token(token)
    assert blocklist.hosts == ({host} if host else set())
    assert blocklist.networks == ({ipaddress.ip_network(network)} if network else set())
    assert blocklist.skipped == (0 if host or network else 1)


@pytest.mark.parametrize(
    ("hosts", "keep", "expected"),
    [
        (
            {"doh.example", "a.doh.example", "b.a.doh.example"},
            set(),
            ["doh.example"],
        ),  # a zone covers subdomains
        ({"a.doh.example", "b.doh.example"}, set(), ["a.doh.example", "b.doh.example"]),
        ({"dns.so-gddt.vn", "dns.google"}, {"dns.so-gddt.vn"}, ["dns.google"]),  # --except
        ({"so-gddt.vn", "dns.google"}, {"dns.so-gddt.vn"}, ["dns.google"]),  # a parent zone would cover it
        ({"x.dns.so-gddt.vn"}, {"dns.so-gddt.vn"}, []),  # kept with its subdomains
    ],
)
def test_minimal_hosts(doh_script, hosts: set[str], keep: set[str], expected: list[str]) -> None:
    assert doh_script.minimal_hosts(hosts, keep) == expected


LIST_FORMATS = {
    "plain.txt": "# DoH hosts\ndns.google\ncloudflare-dns.com  # comment\n\n",
    "hosts.txt": "0.0.0.0 doh.opendns.com\n:: doh.cleanbrowsing.org other.doh.example\n",
    "ips.txt": "1.1.1.1             # cloudflare\n2606:4700:4700::1111 # cloudflare\n9.9.9.0/24\n",
    "list.json": '["dns.quad9.net", "8.8.8.8", 42]',
}


def run_script(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_input_format_ends_up_in_the_outputs(tmp_path: Path) -> None:
    for name, text in LIST_FORMATS.items():
        (tmp_path / name).write_text(text)
    nft, unbound = tmp_path / "out" / "doh-blocklist.nft", tmp_path / "out" / "classgate-doh.conf"
    result = run_script(*sorted(tmp_path.glob("*.*")), "--nft", nft, "--unbound", unbound)
    assert result.returncode == 0, result.stderr
    zones = [line.split('"')[1] for line in unbound.read_text().splitlines() if "local-zone" in line]
    assert zones == [
        "cloudflare-dns.com.",
        "dns.google.",
        "dns.quad9.net.",
        "doh.cleanbrowsing.org.",
        "doh.opendns.com.",
        "other.doh.example.",
    ]
    nft_text = nft.read_text()
    assert "add element inet classgate doh_ipv4 {\n\t1.1.1.1,\n\t8.8.8.8,\n\t9.9.9.0/24\n}" in nft_text
    assert "add element inet classgate doh_ipv6 {\n\t2606:4700:4700::1111\n}" in nft_text
    assert "1 entries skipped" in result.stderr  # the 42 in the JSON list


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("just some words here\n", "no host name or public IP address found"),
        ('{"hosts": ["dns.google"]}', "no host name or public IP address found"),
        ('["dns.google"', "not valid JSON"),
        (None, "cannot read"),
    ],
)
def test_bad_input_is_an_error_and_writes_nothing(tmp_path: Path, content: str | None, message: str) -> None:
    good, bad = tmp_path / "good.txt", tmp_path / "bad.txt"
    good.write_text("dns.google\n")
    if content is not None:
        bad.write_text(content)
    out = tmp_path / "classgate-doh.conf"
    result = run_script(good, bad, "--unbound", out)
    assert result.returncode == 2
    assert message in result.stderr and str(bad) in result.stderr
    assert not out.exists()


def test_no_output_asked_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "l.txt").write_text("dns.google\n")
    result = run_script(tmp_path / "l.txt")
    assert result.returncode == 2 and "--nft FILE and/or --unbound FILE" in result.stderr


@pytest.fixture(scope="module")
def real_lists_output(tmp_path_factory) -> tuple[Path, Path, str]:
    """The outputs built from the published lists an admin would download (the shared snapshot)."""
    doh = need_shared("doh")
    out = tmp_path_factory.mktemp("doh")
    lists = [
        doh / "dibdot-DoH-IP-blocklists" / name
        for name in ("doh-domains_overall.txt", "doh-ipv4.txt", "doh-ipv6.txt")
    ] + sorted((doh / "oneoffdallas-dohservers").glob("*.txt"))
    result = run_script(*lists, "--nft", out / "doh-blocklist.nft", "--unbound", out / "classgate-doh.conf")
    assert result.returncode == 0, result.stderr
    return out / "doh-blocklist.nft", out / "classgate-doh.conf", result.stderr


def test_real_lists_give_thousands_of_entries(real_lists_output) -> None:
    nft, unbound, summary = real_lists_output
    zones = unbound.read_text().count("local-zone:")
    assert 1500 < zones < 5000, summary
    for well_known in ("dns.google.", "cloudflare-dns.com.", "dns.quad9.net."):
        assert f'local-zone: "{well_known}" always_nxdomain' in unbound.read_text()
    assert "\t1.1.1.1,\n" in nft.read_text() or "\t1.1.1.0/" in nft.read_text()


def test_real_lists_unbound_config_is_accepted_by_unbound(real_lists_output) -> None:
    checkconf = need_tool("unbound-checkconf", "unbound")
    result = subprocess.run(
        [checkconf, str(real_lists_output[1])], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_real_lists_load_into_the_shipped_ruleset(real_lists_output, tmp_path: Path) -> None:
    need_tool("nft", "nftables")
    need_root("nftables rules are loaded into a network namespace")
    nft_file = real_lists_output[0]
    (tmp_path / "settings.nft").write_text((DEPLOY / "nftables" / "settings.nft").read_text())
    (tmp_path / "doh-blocklist.nft").write_text(nft_file.read_text())
    try:
        with SchoolNetwork() as net:
            net.run(
                net.gateway, ["nft", "-I", str(tmp_path), "-f", str(DEPLOY / "nftables" / "classgate.nft")]
            )
            listed = net.run(
                net.gateway, ["nft", "-j", "list", "set", "inet", "classgate", "doh_ipv4"]
            ).stdout
    except NetnsUnavailable as exc:
        pytest.skip(f"network namespaces unavailable: {exc}")
    assert listed.count('"elem"') == 1 and listed.count(".") > 4000  # thousands of addresses/ranges
