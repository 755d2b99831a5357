"""Transparent mode for real: a client namespace behind a gateway namespace running the shipped nftables
ruleset and `classgate run --mode transparent`, with the origin servers in a third namespace.

The client's curl is configured with no proxy at all; the request is intercepted by the kernel
redirect, decided by classgate, and (when allowed) reaches the origin. The client's resolver is the
gateway: classgate's own (`--dns`), which asks an unbound on the gateway's loopback (the Internet's names
for this test) and answers a blocked name with the gateway's own LAN address. What the origin log shows is
checked too: a blocked request must never reach it. classgate runs as `nobody` with every capability
dropped, which is what deploy/systemd/classgate.service promises is enough; tests/deploy/unprivileged.py
lets it reach a checkout (and a Python) that only root may enter, as CI's `mktemp -d` is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.deploy.deploy_helpers import DEPLOY, REPO, VENV_BIN, need_root, need_tool, self_signed_cert
from tests.deploy.schoolnet import (
    CLIENT_IP,
    GATEWAY_LAN_IP,
    GATEWAY_WAN_IP,
    ORIGIN_DOH_IP,
    ORIGIN_IP,
    ORIGIN_IP6,
    ORIGIN_OTHER_IP,
    NetnsUnavailable,
    SchoolNetwork,
    load_firewall,
    write_settings,
)
from tests.deploy.unprivileged import NOBODY, nobody_command
from tests.proxy.dnstest_support import dig_answers, dig_status, need_dig, need_unbound, unbound_conf

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

PROXY_PORT = 8080  # inside the gateway namespace: no other process can hold it
DNS_PORT = 8053  # classgate's resolver (settings.nft's DNS_PORT)
UPSTREAM_PORT = 5300  # unbound on the gateway's loopback: classgate's upstream
ORIGIN_SERVER = Path(__file__).with_name("origin_server.py")
# What nobody needs to run the checkout's classgate: the sources (the editable install points there),
# the venv, and the Python the venv was made from.
NOBODY_NEEDS = (REPO, Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve())

POLICY = """\
classgate: 1
name: deploy-e2e
categories:
  blocked: {domains: [blocked.test, blocked-tls.test]}
rules:
  - {name: block-test-sites, action: block, categories: [blocked]}
default: allow
# No group trusts the school CA here: HTTPS is decided by SNI and passed through untouched.
tls: {inspect_groups: []}
block_page: {contact: "deploy e2e", language: en}
"""


def wait_ready(process: subprocess.Popen, what: str) -> None:
    line = process.stdout.readline()
    if line.strip() != "ready":
        raise RuntimeError(
            f"{what} did not start: {line}{process.stdout.read() if process.poll() is not None else ''}"
        )


def wait_listening(net: SchoolNetwork, proxy: subprocess.Popen, log: Path, deadline_s: float = 30) -> None:
    """Until the proxy accepts on its port and the resolver on its own in the gateway namespace (ss), or it died."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proxy.poll() is not None:
            raise RuntimeError(f"classgate exited with {proxy.returncode}:\n{log.read_text()}")
        listening = net.run(net.gateway, ["ss", "-Htln", f"sport = :{PROXY_PORT}"], check=False).stdout
        resolving = net.run(net.gateway, ["ss", "-Hln", f"sport = :{DNS_PORT}"], check=False).stdout
        if listening.strip() and len(resolving.strip().splitlines()) >= 2:  # UDP and TCP
            return
        time.sleep(0.2)
    raise RuntimeError(f"classgate did not listen within {deadline_s}s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def school():
    """The running network: yields (net, origin log path, proxy log path); tears everything down."""
    need_root("it creates network namespaces and loads nftables rules")
    need_tool("nft", "nftables")
    need_tool("curl", "curl")
    need_tool("setpriv", "util-linux")
    need_tool("unshare", "util-linux")
    openssl = need_tool("openssl", "openssl")
    need_dig()
    unbound = need_unbound()
    # Not pytest's tmp_path: its parent is private to root, and classgate runs as nobody.
    work = Path(tempfile.mkdtemp(prefix="classgate-e2e-"))
    os.chmod(work, 0o755)
    (work / "view").mkdir()
    cert, key = work / "origin-cert.pem", work / "origin-key.pem"
    self_signed_cert(openssl, key, cert, "allowed-tls.test",
                     "DNS:allowed-tls.test,DNS:blocked-tls.test,DNS:dns-only.test")
    (work / "origin-chain.pem").write_text(cert.read_text() + key.read_text())
    policy = work / "policy.yaml"
    policy.write_text(POLICY)
    state = work / "state"
    state.mkdir()
    os.chown(state, int(NOBODY), int(NOBODY))
    nft_dir = work / "nftables"
    # As an admin would allow one more service for one address: the origin's TCP 2222.
    write_settings(nft_dir, PROXY_PORT, dns_port=DNS_PORT, allow_ipv4=f"{{ {ORIGIN_IP} . tcp . 2222 }}")
    # The Internet's names, as the gateway's upstream knows them. dns-only.test is in no hosts file: only
    # classgate's resolver can tell the client (and, by its answers, the TLS gate) where it is.
    upstream_conf = unbound_conf(work, {"test": (
        "$ORIGIN test.\n$TTL 300\n@ IN SOA ns.test. a.test. 1 3600 600 86400 60\n@ IN NS ns.test.\n"
        f"ns IN A {ORIGIN_IP}\n" + "".join(f"{name} IN A {ORIGIN_IP}\n" for name in (
            "allowed", "allowed-tls", "blocked", "blocked-tls", "dns-only")))}, UPSTREAM_PORT)
    (nft_dir / "doh-blocklist-test.nft").write_text(
        f"add element inet classgate doh_ipv4 {{ {ORIGIN_DOH_IP} }}\n"
    )
    origin_log, proxy_log = work / "origin.log", work / "classgate.log"
    origin_log.touch()
    os.chmod(origin_log, 0o666)

    processes: list[subprocess.Popen] = []
    try:
        with SchoolNetwork() as net:
            # The gateway's own name lookups (which a passthrough's original destination must match).
            net.set_hosts(net.gateway, {"allowed-tls.test": ORIGIN_IP, "blocked-tls.test": ORIGIN_IP,
                                        "allowed.test": ORIGIN_IP})
            # Nothing answers on the gateway's 127.0.0.1:53: the gateway's own lookups know only the hosts file.
            net.set_resolv(net.gateway, "127.0.0.1")
            net.set_resolv(net.client, GATEWAY_LAN_IP)  # as DHCP would tell the devices
            load_firewall(net, nft_dir, DEPLOY / "nftables" / "classgate.nft")
            server = net.popen(net.origin, [sys.executable, str(ORIGIN_SERVER), "origin", str(origin_log),
                                            str(work / "origin-chain.pem")], stdout=subprocess.PIPE, text=True)
            processes.append(server)
            wait_ready(server, f"test server in {net.origin}")
            processes.append(net.popen(net.gateway, [unbound, "-c", str(upstream_conf)], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL))
            classgate = [
                str(VENV_BIN / "classgate"),
                "run",
                "--mode",
                "transparent",
                "--listen",
                f"0.0.0.0:{PROXY_PORT}",
                "--metrics",
                "off",
                "--policy",
                str(policy),
                "--state-dir",
                str(state),
                "--dns",
                f"0.0.0.0:{DNS_PORT}",
                "--dns-upstream",
                f"127.0.0.1:{UPSTREAM_PORT}",
            ]
            proxy = net.popen(
                net.gateway,
                nobody_command(classgate, cwd=REPO, reach=NOBODY_NEEDS, scratch=work / "view"),
                stdout=proxy_log.open("w"),
                stderr=subprocess.STDOUT,
            )
            processes.append(proxy)
            wait_listening(net, proxy, proxy_log)
            yield net, origin_log, proxy_log
    except NetnsUnavailable as exc:
        pytest.skip(f"network namespaces unavailable: {exc}")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)


def curl(net: SchoolNetwork, *args: str) -> subprocess.CompletedProcess:
    return net.run(
        net.client, ["curl", "-sS", "-m", "10", "-o", "-", "-w", "\n%{http_code}", *args], check=False
    )


def origin_lines(origin_log: Path) -> list[str]:
    return origin_log.read_text().splitlines()


@pytest.mark.parametrize(
    ("host", "status", "body_has", "reaches_origin"),
    [
        ("allowed.test", "200", "hello from the http origin, host=allowed.test", True),
        ("www.allowed.test", "200", "hello from the http origin, host=www.allowed.test", True),
        ("blocked.test", "403", "blocked.test", False),
        ("sub.blocked.test", "403", "blocked.test", False),
    ],
)
def test_plain_http_is_intercepted_and_decided(school, host, status, body_has, reaches_origin) -> None:
    net, origin_log, _ = school
    before = len(origin_lines(origin_log))
    result = curl(net, "-H", f"Host: {host}", f"http://{ORIGIN_IP}/page")
    assert result.returncode == 0, result.stderr
    body, code = result.stdout.rsplit("\n", 1)
    assert code == status, body
    assert body_has in body
    reached = [line for line in origin_lines(origin_log)[before:] if line.startswith("http GET")]
    assert reached == ([f"http GET {host}/page"] if reaches_origin else [])


def test_school_ca_page_is_served_in_transparent_mode(school) -> None:
    """The resolver sends classgate.ca through the gateway; the redirect hands it to classgate."""
    net, origin_log, _ = school
    before = len(origin_lines(origin_log))
    result = curl(net, "-H", "Host: classgate.ca", "http://192.0.2.80/")
    assert result.returncode == 0, result.stderr
    body, code = result.stdout.rsplit("\n", 1)
    ca_file = origin_log.parent / "state" / "ca" / "mitmproxy-ca-cert.pem"
    fingerprint = (
        subprocess.run(
            ["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(ca_file)],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .split("=", 1)[1]
    )
    assert code == "200" and fingerprint in body, body[:500]
    pem = curl(net, "-H", "Host: classgate.ca", "http://192.0.2.80/classgate-ca.pem")
    assert pem.stdout.rsplit("\n", 1)[0].strip() == ca_file.read_text().strip()
    assert origin_lines(origin_log)[before:] == []


def test_allowed_https_passes_through_with_the_origins_own_certificate(school) -> None:
    net, origin_log, _ = school
    work = origin_log.parent
    # Only the origin's self-signed certificate is trusted: success proves nobody re-signed it.
    result = curl(
        net,
        "--cacert",
        str(work / "origin-cert.pem"),
        "--resolve",
        f"allowed-tls.test:443:{ORIGIN_IP}",
        "https://allowed-tls.test/x",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("\n200") and "host=allowed-tls.test" in result.stdout
    assert "tls SNI allowed-tls.test" in origin_lines(origin_log)


def test_blocked_https_never_reaches_the_origin(school) -> None:
    net, origin_log, _ = school
    work = origin_log.parent
    result = curl(
        net,
        "--cacert",
        str(work / "origin-cert.pem"),
        "--resolve",
        f"blocked-tls.test:443:{ORIGIN_IP}",
        "https://blocked-tls.test/",
    )
    assert result.returncode != 0  # refused by SNI: no handshake with the origin's certificate
    assert not [line for line in origin_lines(origin_log) if "blocked-tls.test" in line]


def test_an_allowed_sni_to_an_address_not_its_names_is_refused(school) -> None:
    """A VPN behind an allowed (or a bank's) name: the original destination is no address of the SNI's name,
    as the gateway resolves it, so the uninspected tunnel is refused; nothing reaches that server."""
    net, origin_log, proxy_log = school
    work = origin_log.parent
    before = len(origin_lines(origin_log))
    result = curl(
        net, "--cacert", str(work / "origin-cert.pem"), "--resolve", f"allowed-tls.test:443:{ORIGIN_OTHER_IP}",
        "https://allowed-tls.test/x",
    )
    assert result.returncode != 0
    assert not [line for line in origin_lines(origin_log)[before:] if "allowed-tls.test" in line]
    assert "destination is not its name's" in proxy_log.read_text()


def udp_exchange(net: SchoolNetwork, address: str, port: int) -> str:
    """Send one datagram from the client; the reply, or the error the kernel reported."""
    code = (
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)\n"
        f"s.connect(({address!r}, {port})); s.send(b'probe')\n"
        "try:\n    print(s.recv(100).decode())\n"
        "except OSError as e:\n    print(type(e).__name__)\n"
    )
    return net.run(net.client, [sys.executable, "-c", code]).stdout.strip()


def test_quic_is_rejected_so_browsers_fall_back_to_tcp(school) -> None:
    net, origin_log, _ = school
    assert udp_exchange(net, ORIGIN_IP, 443) == "ConnectionRefusedError"  # fast ICMP, not a timeout
    assert not [line for line in origin_lines(origin_log) if "UDP 443" in line]


def tcp_exchange(net: SchoolNetwork, address: str, port: int) -> str:
    """Open a TCP connection from the client; the first line the server sent, or the error."""
    code = (
        "import socket\n"
        "try:\n"
        f"    s = socket.create_connection(({address!r}, {port}), timeout=3)\n"
        "    print(s.recv(100).decode().strip())\n"
        "except OSError as e:\n    print(type(e).__name__)\n"
    )
    return net.run(net.client, [sys.executable, "-c", code]).stdout.strip()


@pytest.mark.parametrize(
    ("protocol", "port", "outcome", "why"),
    [
        ("tcp", 1194, "refused", "OpenVPN over TCP: no way around the filter"),
        ("udp", 51820, "refused", "WireGuard"),
        ("udp", 123, "passes", "NTP: allowed by default (settings.nft LAN_ALLOW)"),
        ("tcp", 2222, "passes", "allowed for this one address (LAN_ALLOW_IPV4)"),
    ],
)
def test_the_lan_is_default_deny_except_what_the_settings_allow(school, protocol, port, outcome, why) -> None:
    net, origin_log, _ = school
    before = len(origin_lines(origin_log))
    result = (tcp_exchange if protocol == "tcp" else udp_exchange)(net, ORIGIN_IP, port)
    time.sleep(0.2)
    arrived = [line for line in origin_lines(origin_log)[before:] if f" {port} " in f"{line} "]
    if outcome == "refused":
        # A fast refusal by the gateway (ICMP admin-prohibited), not a timeout, and nothing arrived.
        assert result in ("ConnectionRefusedError", "OSError", "PermissionError") or "Error" in result, result
        assert result != "TimeoutError", why
        assert not arrived, (why, arrived)
    else:
        assert result in ("hello from the origin", "answer from origin") or "origin" in result, (why, result)
        assert arrived, why


def client_dig(net: SchoolNetwork, server: str, name: str, *extra: str) -> subprocess.CompletedProcess:
    return net.run(net.client, ["dig", f"@{server}", name, "A", "+time=3", "+tries=1", "+noall", "+answer",
                                "+comments", *extra], check=False)


@pytest.mark.parametrize(
    ("server", "name", "answer"),
    [
        (ORIGIN_IP, "dns-only.test", ORIGIN_IP),  # an outside resolver: still the gateway answers
        (GATEWAY_LAN_IP, "dns-only.test", ORIGIN_IP),  # the gateway's own address (DHCP's DNS server)
        (GATEWAY_LAN_IP, "blocked.test", GATEWAY_LAN_IP),  # blocked: the gateway's address on the LAN
        (ORIGIN_IP, "blocked-tls.test", GATEWAY_LAN_IP),
        (GATEWAY_LAN_IP, "classgate.ca", GATEWAY_LAN_IP),  # the CA page is served there
    ],
)
def test_dns_to_any_resolver_is_answered_by_the_gateways_resolver(school, server: str, name: str,
                                                                  answer: str) -> None:
    net, origin_log, _ = school
    for transport in ([], ["+tcp"]):
        result = client_dig(net, server, name, *transport)
        assert dig_status(result) == "NOERROR" and dig_answers(result) == [(name, "A", answer)], result.stdout
    assert not [line for line in origin_lines(origin_log) if line.startswith("origin UDP 53")]


def test_resolving_through_the_gateway_then_connecting_passes(school) -> None:
    """dns-only.test is in no hosts file: the TLS gate accepts the passthrough's destination because the
    gateway's resolver gave that address for the name."""
    net, origin_log, _ = school
    work = origin_log.parent
    result = curl(net, "--cacert", str(work / "origin-cert.pem"), "https://dns-only.test/x")
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("\n200") and "host=dns-only.test" in result.stdout
    assert "tls SNI dns-only.test" in origin_lines(origin_log)


def test_an_allowed_sni_to_an_address_the_gateways_resolver_never_gave_is_refused(school) -> None:
    net, origin_log, proxy_log = school
    work = origin_log.parent
    assert dig_answers(client_dig(net, GATEWAY_LAN_IP, "dns-only.test")) == [("dns-only.test", "A", ORIGIN_IP)]
    before = len(origin_lines(origin_log))
    result = curl(net, "--cacert", str(work / "origin-cert.pem"), "--resolve",
                  f"dns-only.test:443:{ORIGIN_OTHER_IP}", "https://dns-only.test/x")
    assert result.returncode != 0
    assert not [line for line in origin_lines(origin_log)[before:] if "dns-only.test" in line]
    assert "destination is not its name's" in proxy_log.read_text()


@pytest.mark.parametrize(("url", "status", "body_has"), [
    ("http://blocked.test/page", "403", "blocked.test"),  # the block page, from the gateway's address
    ("http://classgate.ca/", "200", "classgate"),  # the CA page, by its name
])
def test_names_resolved_to_the_gateway_reach_the_proxy(school, url: str, status: str, body_has: str) -> None:
    net, origin_log, _ = school
    before = len(origin_lines(origin_log))
    result = curl(net, url)
    assert result.returncode == 0, result.stderr
    body, code = result.stdout.rsplit("\n", 1)
    assert code == status and body_has in body, body[:300]
    assert origin_lines(origin_log)[before:] == []


def test_the_resolver_is_not_open_to_the_wan_side(school) -> None:
    net, _, _ = school
    result = net.run(net.origin, ["dig", f"@{GATEWAY_WAN_IP}", "-p", str(DNS_PORT), "dns-only.test", "+time=2",
                                  "+tries=1"], check=False)
    assert result.returncode == 9 and "timed out" in result.stdout, result.stdout  # 9: no reply (dropped)


@pytest.mark.parametrize(
    ("target", "why"),
    [
        (f"telnet://{ORIGIN_IP}:853", "DNS over TLS"),
        (f"http://{ORIGIN_DOH_IP}/dns-query", "an address in the DoH set"),
        (f"https://{ORIGIN_DOH_IP}/dns-query", "an address in the DoH set"),
    ],
)
def test_encrypted_dns_is_refused(school, target: str, why: str) -> None:
    net, origin_log, _ = school
    before = len(origin_lines(origin_log))
    result = curl(net, "-k", target)
    assert result.returncode == 7, f"{why}: {result.stderr}"  # 7: could not connect (rejected)
    assert origin_lines(origin_log)[before:] == []


def test_ipv6_web_is_closed_not_unfiltered(school) -> None:
    """The proxy listens on IPv4 only; IPv6 web is redirected to it and refused, so devices use IPv4."""
    net, origin_log, _ = school
    before = len(origin_lines(origin_log))
    for url in (f"http://[{ORIGIN_IP6}]/", f"https://[{ORIGIN_IP6}]/"):
        result = curl(net, "-k", "-H", "Host: allowed.test", url)
        assert result.returncode == 7, result.stderr  # refused at once, not a timeout
    # The origin answers IPv6 (it listens on every address): only the gateway stopped these.
    direct = net.run(
        net.gateway, ["curl", "-sS", "-m", "5", "-H", "Host: allowed.test", f"http://[{ORIGIN_IP6}]/"]
    )
    assert "hello from the http origin" in direct.stdout
    assert [line for line in origin_lines(origin_log)[before:] if "GET" in line] == ["http GET allowed.test/"]


def test_the_proxy_is_not_open_to_the_wan_side(school) -> None:
    """classgate listens on 0.0.0.0, but the firewall lets only the LAN reach its port."""
    net, _, _ = school
    result = net.run(
        net.origin,
        ["curl", "-sS", "-m", "2", "-x", f"http://{GATEWAY_WAN_IP}:{PROXY_PORT}", "http://allowed.test/"],
        check=False,
    )
    assert result.returncode == 28, result.stderr  # 28: timed out, the SYN was dropped


def test_the_log_keeps_no_client_address_at_default_level(school) -> None:
    net, _, proxy_log = school
    curl(net, "-H", "Host: blocked.test", f"http://{ORIGIN_IP}/secret-student-page")
    time.sleep(0.3)
    text = proxy_log.read_text()
    assert CLIENT_IP not in text and "secret-student-page" not in text
