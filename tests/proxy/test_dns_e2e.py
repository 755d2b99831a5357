"""The gateway's resolver for real: `classgate run --dns` in front of a real unbound, asked by dig from several
loopback addresses (one per group), plus ClientHellos with ECH sent through the proxy.

unbound is the Internet here: authoritative for test zones (A/AAAA, a CNAME chain, an HTTPS record with
`ech=`, a name with 100 addresses) and for the search engines' safe hosts. The clock is pinned to Monday 09:00
(class hours). Everything runs on loopback; the processes are the test's own.
"""

from __future__ import annotations

import socket
import ssl
import struct
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509

from tests.proxy.dnstest_support import (
    CLOUDFLARE_ECH,
    Unbound,
    dig,
    dig_answers,
    dig_status,
    need_dig,
    query_bytes,
    tcp_exchange,
    udp_exchange,
)
from tests.proxy.echtest_hello import OUTER, ech_client_hello
from tests.proxy.proxytest_support import (
    GUEST,
    STUDENT,
    TEACHER,
    TEST_POLICY,
    ProxyProcess,
    free_port,
    read_head,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

FLOODER, OUTSIDER = "127.0.0.8", "127.0.0.9"  # a group of its own (the rate limit); in no group, not the LAN
RATE = 20  # queries per second per device for this gateway (bursts of 80)

POLICY = (
    TEST_POLICY
    .replace("  guests:   {networks: [127.0.0.4/32]}     # devices without the school CA\n",
             "  guests:   {networks: [127.0.0.4/32]}     # devices without the school CA\n"
             "  flooders: {networks: [127.0.0.8/32]}\n")
    .replace('    - {days: mon-fri, from: "07:00", to: "11:30"}\n',
             '    - {days: mon-fri, from: "07:00", to: "11:30"}\n'
             '  evenings:\n    - {days: daily, from: "18:00", to: "22:00"}\n')
    .replace("  - {name: harmful, action: block, categories: [gambling]}\n",
             "  - {name: harmful, action: block, categories: [gambling]}\n"
             "  - {name: evening-games, action: block, when: evenings, domains: [games.test]}\n")
    .replace("safe_search: {google: strict, bing: strict, duckduckgo: strict, youtube: strict}",
             "safe_search: {google: strict, bing: moderate, duckduckgo: off, youtube: moderate}")
)

TEST_ZONE = """\
$ORIGIN test.
$TTL 300
@ IN SOA ns.test. admin.test. 1 3600 600 86400 60
@ IN NS ns.test.
ns IN A 192.0.2.1
allowed IN A 192.0.2.10
allowed IN AAAA 2001:db8::10
blocked IN A 192.0.2.11
social IN A 192.0.2.12
games IN A 192.0.2.13
video IN A 192.0.2.14
ech IN A 192.0.2.15
ech IN HTTPS 1 . alpn=h2,h3 ipv4hint=192.0.2.15 ech={ech}
svc IN SVCB 1 svc-pool.test. port=8443 ech={ech}
www.chain IN CNAME cdn.chain
cdn.chain IN CNAME edge.chain
edge.chain IN A 192.0.2.20
{big}
""".format(ech=CLOUDFLARE_ECH, big="\n".join(f"big IN A 198.18.{i // 250}.{i % 250 + 1}" for i in range(100)))


def engine_zone(origin: str, records: str) -> str:
    return f"$ORIGIN {origin}.\n$TTL 300\n@ IN SOA ns.{origin}. admin.{origin}. 1 3600 600 86400 60\n" \
           f"@ IN NS ns.{origin}.\nns IN A 192.0.2.1\n{records}\n"


ZONES = {
    "test": TEST_ZONE,
    "google.com": engine_zone("google.com", "forcesafesearch IN A 216.239.38.120\n"
                                            "forcesafesearch IN AAAA 2001:4860:4802:32::78\nwww IN A 142.250.1.1"),
    "bing.com": engine_zone("bing.com", "strict IN A 204.79.197.220\nwww IN A 13.107.21.200"),
    "duckduckgo.com": engine_zone("duckduckgo.com", "safe IN A 52.142.124.215\n@ IN A 52.149.246.39"),
    # Google Translate's website proxy: each site under a host of its own (policies/proxied_origins.py).
    "translate.goog": engine_zone("translate.goog", "www-blocked-test IN A 192.0.2.30\nallowed-test IN A 192.0.2.31"),
    "youtube.com": engine_zone("youtube.com", "restrict IN A 216.239.38.120\nrestrictmoderate IN A 216.239.38.119\n"
                                              "www IN A 142.250.2.2"),
}


class Gateway:
    def __init__(self, proxy: ProxyProcess, dns_port: int) -> None:
        self.proxy, self.port = proxy, dns_port

    def dig(self, name: str, qtype: str = "A", source: str = GUEST, *extra: str):
        return dig(self.port, name, qtype, source=source, extra=["+noall", "+answer", "+comments", *extra])

    def metric(self, name: str, **labels: str) -> float:
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.proxy.metrics_port}/metrics", timeout=5).read().decode()
        want = "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else ""
        for line in text.splitlines():
            if line.startswith(name + want + " ") or (not labels and line.startswith(name + " ")):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, origin, origin_pki):
    need_dig()
    work = tmp_path_factory.mktemp("dns-e2e")
    upstream = Unbound(work, ZONES)
    policy = work / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    dns_port = free_port()
    proxy = None
    try:
        proxy = ProxyProcess(policy, work / "state", origin, origin_pki.ca, extra=[
            "--dns", f"127.0.0.1:{dns_port}", "--dns-upstream", f"127.0.0.1:{upstream.port}",
            "--dns-rate", str(RATE)])
        deadline = time.monotonic() + 30
        while udp_exchange(("127.0.0.1", dns_port), query_bytes("ns.test"), source=TEACHER, timeout=0.3) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the DNS listener did not answer:\n{proxy.output()}")
        yield Gateway(proxy, dns_port)
    finally:
        if proxy is not None:
            proxy.stop()
            assert "Traceback" not in proxy.output(), proxy.output()
        upstream.stop()


# --- decisions -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("name", "qtype", "client", "status", "answers"),
    [
        ("allowed.test", "A", GUEST, "NOERROR", [("allowed.test", "A", "192.0.2.10")]),
        ("allowed.test", "AAAA", STUDENT, "NOERROR", [("allowed.test", "AAAA", "2001:db8::10")]),
        # blocked for everyone: the gateway's own address (where the proxy shows the block page)
        ("blocked.test", "A", GUEST, "NOERROR", [("blocked.test", "A", "127.0.0.1")]),
        ("sub.blocked.test", "A", TEACHER, "NOERROR", [("sub.blocked.test", "A", "127.0.0.1")]),
        ("blocked.test", "AAAA", GUEST, "NOERROR", []),  # the gateway has no IPv6 address here: no data
        # the schedule: social sites are blocked for students in class hours (now), not for teachers
        ("social.test", "A", STUDENT, "NOERROR", [("social.test", "A", "127.0.0.1")]),
        ("social.test", "A", TEACHER, "NOERROR", [("social.test", "A", "192.0.2.12")]),
        ("games.test", "A", STUDENT, "NOERROR", [("games.test", "A", "192.0.2.13")]),  # evenings only
        ("video.test", "A", STUDENT, "NOERROR", [("video.test", "A", "192.0.2.14")]),  # only /shorts: per request
        ("www.chain.test", "A", GUEST, "NOERROR", [("www.chain.test", "CNAME", "cdn.chain.test."),
                                                   ("cdn.chain.test", "CNAME", "edge.chain.test."),
                                                   ("edge.chain.test", "A", "192.0.2.20")]),
        ("nowhere.test", "A", GUEST, "NXDOMAIN", []),
        # a site through Google Translate's proxy is that site: blocked by name, for a device never inspected
        ("www-blocked-test.translate.goog", "A", GUEST, "NOERROR", [("www-blocked-test.translate.goog", "A",
                                                                     "127.0.0.1")]),
        ("allowed-test.translate.goog", "A", GUEST, "NOERROR", [("allowed-test.translate.goog", "A", "192.0.2.31")]),
        # the resolver's own rules
        ("use-application-dns.net", "A", TEACHER, "NXDOMAIN", []),
        ("mask.icloud.com", "A", GUEST, "NXDOMAIN", []),
        ("mask-h2.icloud.com", "AAAA", GUEST, "NXDOMAIN", []),
        ("dns.google", "A", STUDENT, "NOERROR", [("dns.google", "A", "127.0.0.1")]),
        ("mozilla.cloudflare-dns.com", "A", GUEST, "NOERROR", [("mozilla.cloudflare-dns.com", "A", "127.0.0.1")]),
        ("classgate.ca", "A", GUEST, "NOERROR", [("classgate.ca", "A", "127.0.0.1")]),
    ],
)
def test_answers_per_group_and_schedule(gateway: Gateway, name: str, qtype: str, client: str, status: str,
                                        answers: list) -> None:
    result = gateway.dig(name, qtype, client)
    assert dig_status(result) == status, result.stdout
    assert [(n, t, d) for n, t, d in dig_answers(result)] == [(n, t, d) for n, t, d in answers], result.stdout


@pytest.mark.parametrize(
    ("name", "client", "answers"),
    [
        ("www.google.com", GUEST, [("www.google.com", "CNAME", "forcesafesearch.google.com."),
                                   ("forcesafesearch.google.com", "A", "216.239.38.120")]),
        ("www.google.com.vn", GUEST, [("www.google.com.vn", "CNAME", "forcesafesearch.google.com."),
                                      ("forcesafesearch.google.com", "A", "216.239.38.120")]),
        ("www.bing.com", GUEST, [("www.bing.com", "CNAME", "strict.bing.com."),  # moderate: Bing's only host
                                 ("strict.bing.com", "A", "204.79.197.220")]),
        ("www.youtube.com", GUEST, [("www.youtube.com", "CNAME", "restrictmoderate.youtube.com."),
                                    ("restrictmoderate.youtube.com", "A", "216.239.38.119")]),
        ("duckduckgo.com", GUEST, [("duckduckgo.com", "A", "52.149.246.39")]),  # off in this policy
        ("www.google.com", TEACHER, [("www.google.com", "A", "142.250.1.1")]),  # inspected: the proxy rewrites
        ("www.youtube.com", STUDENT, [("www.youtube.com", "A", "142.250.2.2")]),
    ],
)
def test_safesearch_per_engine_and_level(gateway: Gateway, name: str, client: str, answers: list) -> None:
    result = gateway.dig(name, "A", client)
    assert dig_status(result) == "NOERROR" and dig_answers(result) == answers, result.stdout


def test_safesearch_aaaa_follows_the_cname(gateway: Gateway) -> None:
    result = gateway.dig("www.google.com", "AAAA", GUEST)
    assert dig_answers(result) == [("www.google.com", "CNAME", "forcesafesearch.google.com."),
                                   ("forcesafesearch.google.com", "AAAA", "2001:4860:4802:32::78")]


# --- ECH in DNS ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("name", "qtype", "kept"),
    [
        ("ech.test", "HTTPS", '1 . alpn="h2,h3" ipv4hint=192.0.2.15'),
        ("svc.test", "SVCB", "1 svc-pool.test. port=8443"),
    ],
)
@pytest.mark.parametrize("dnssec", [False, True], ids=["plain", "dnssec-ok"])
def test_no_ech_parameter_leaves_the_gateway(gateway: Gateway, name: str, qtype: str, kept: str,
                                             dnssec: bool) -> None:
    before = gateway.metric("classgate_dns_ech_stripped_records_total", type=qtype.lower())
    result = gateway.dig(name, qtype, STUDENT, *(["+dnssec"] if dnssec else []))
    assert dig_answers(result) == [(name, qtype, kept)], result.stdout
    assert "ech=" not in result.stdout
    # Counted once per upstream answer (then served from the cache without it).
    assert gateway.metric("classgate_dns_ech_stripped_records_total", type=qtype.lower()) >= max(before, 1)


def test_special_answers_are_counted(gateway: Gateway) -> None:
    before = {k: gateway.metric("classgate_dns_special_answers_total", kind=k) for k in ("canary", "private_relay")}
    gateway.dig("use-application-dns.net", "A", GUEST)
    gateway.dig("mask.icloud.com", "A", GUEST)
    assert gateway.metric("classgate_dns_special_answers_total", kind="canary") == before["canary"] + 1
    assert gateway.metric("classgate_dns_special_answers_total", kind="private_relay") == before["private_relay"] + 1
    assert gateway.metric("classgate_dns_queries_total", category="gambling", group="guests", action="block") >= 1


# --- transport: malformed input, TCP, the rate limit, who may ask -------------------------------------------

HEADER = struct.Struct("!HHHHHH")


def rcode(reply: bytes | None) -> int | None:
    return reply[3] & 0xF if reply else None


@pytest.mark.parametrize(
    ("why", "data", "expected"),
    [
        ("truncated header", b"\xab\xcd\x01\x00\x00", 1),
        ("truncated question", query_bytes("allowed.test", query_id=0xABCD)[:20], 1),
        ("oversized", query_bytes("allowed.test", query_id=0xABCD) + b"\0" * 1400, 1),
        ("compression loop", HEADER.pack(0xABCD, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01", 1),
        ("wrong class (CHAOS)", query_bytes("version.bind", 16, qclass=3, query_id=0xABCD), 5),
        ("a response, not a query", query_bytes("allowed.test", flags=0x8180, query_id=0xABCD), None),
        ("one byte", b"\x01", None),
    ],
)
def test_malformed_packets_get_formerr_and_a_count(gateway: Gateway, why: str, data: bytes,
                                                   expected: int | None) -> None:
    reason = "unsupported" if expected == 5 else "malformed"
    before = gateway.metric("classgate_dns_failed_queries_total", reason=reason)
    reply = udp_exchange(("127.0.0.1", gateway.port), data, source=TEACHER, timeout=1.0)
    assert rcode(reply) == expected, why
    if reply is not None:
        assert reply[:2] == b"\xab\xcd" and len(reply) <= max(len(data), 12) + 4
    assert gateway.metric("classgate_dns_failed_queries_total", reason=reason) == before + 1
    # ... and the listener goes on answering.
    assert dig_status(gateway.dig("allowed.test", "A", TEACHER)) == "NOERROR"


def test_oversized_tcp_query_gets_formerr(gateway: Gateway) -> None:
    reply = tcp_exchange(("127.0.0.1", gateway.port), query_bytes("a.test", query_id=0xABCD) + b"\0" * 2000,
                         source=TEACHER)
    assert rcode(reply) == 1 and reply[:2] == b"\xab\xcd"


def test_tcp_for_large_answers_in_both_directions(gateway: Gateway) -> None:
    """100 addresses do not fit the 1232 bytes of UDP: unbound sets TC to the gateway, which asks it again over
    TCP; the gateway sets TC to dig, which asks again over TCP and gets all 100."""
    udp_only = gateway.dig("big.test", "A", TEACHER, "+ignore", "+bufsize=1232")
    assert " tc" in udp_only.stdout.split("flags:", 1)[1].split(";", 1)[0] and dig_answers(udp_only) == []
    full = gateway.dig("big.test", "A", TEACHER, "+bufsize=1232")
    assert len(dig_answers(full)) == 100, full.stdout
    assert len(dig_answers(gateway.dig("allowed.test", "A", TEACHER, "+tcp"))) == 1


def test_the_rate_limit_drops_a_flood_from_one_device(gateway: Gateway) -> None:
    before = gateway.metric("classgate_dns_failed_queries_total", reason="rate_limited")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((FLOODER, 0))
        sock.settimeout(1.0)
        for i in range(300):
            sock.sendto(query_bytes("allowed.test", query_id=i), ("127.0.0.1", gateway.port))
            if i % 50 == 49:
                time.sleep(0.002)  # in bursts, so the kernel's socket buffer drops none before the limiter
        answered = 0
        for _ in range(300):
            try:
                sock.recv(4096)
            except TimeoutError:
                break
            answered += 1
    # The burst (80), plus what one second at 20/s refills at most.
    assert RATE * 4 <= answered <= RATE * 5, answered
    dropped = gateway.metric("classgate_dns_failed_queries_total", reason="rate_limited") - before
    assert 0 < dropped <= 300 - answered
    # Another device is not affected.
    assert dig_status(gateway.dig("allowed.test", "A", GUEST)) == "NOERROR"


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_a_client_outside_the_lan_is_refused(gateway: Gateway, transport: str) -> None:
    result = gateway.dig("allowed.test", "A", OUTSIDER, *(["+tcp"] if transport == "tcp" else []))
    assert dig_status(result) == "REFUSED" and dig_answers(result) == [], result.stdout
    assert gateway.metric("classgate_dns_failed_queries_total", reason="not_lan") >= 1


# --- ECH at the TLS gate, through the proxy -------------------------------------------------------------

def tls_records(sock: socket.socket, deadline_s: float = 5.0) -> list[tuple[int, bytes]]:
    """TLS records the proxy sends back until it closes, an alert comes, or the server's hello is done."""
    records: list[tuple[int, bytes]] = []
    buffer = b""
    sock.settimeout(deadline_s)
    handshake = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not chunk:
            break
        buffer += chunk
        while len(buffer) >= 5 and len(buffer) >= 5 + int.from_bytes(buffer[3:5], "big"):
            length = int.from_bytes(buffer[3:5], "big")
            records.append((buffer[0], buffer[5:5 + length]))
            if buffer[0] == 0x16:
                handshake += buffer[5:5 + length]
            buffer = buffer[5 + length:]
        if any(kind == 0x15 for kind, _ in records) or b"\x0e\x00\x00\x00" in handshake:  # alert / ServerHelloDone
            break
    return records


def first_certificate(records: list[tuple[int, bytes]]) -> x509.Certificate | None:
    handshake = b"".join(body for kind, body in records if kind == 0x16)
    offset = 0
    while offset + 4 <= len(handshake):
        kind, length = handshake[offset], int.from_bytes(handshake[offset + 1:offset + 4], "big")
        body = handshake[offset + 4:offset + 4 + length]
        if kind == 11:  # Certificate (TLS 1.2: in the clear)
            cert_length = int.from_bytes(body[3:6], "big")
            return x509.load_der_x509_certificate(body[6:6 + cert_length])
        offset += 4 + length
    return None


def connect_and_hello(proxy: ProxyProcess, client: str, target: str, record: bytes) -> list[tuple[int, bytes]]:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10, source_address=(client, 0)) as sock:
        sock.sendall(f"CONNECT {target}:443 HTTP/1.1\r\nHost: {target}:443\r\n\r\n".encode())
        reply = read_head(sock)
        if not reply.startswith(b"HTTP/1.1 200"):
            return [(0, reply)]
        sock.sendall(record)
        return tls_records(sock)


def school_ca(proxy: ProxyProcess) -> x509.Certificate:
    return x509.load_pem_x509_certificate(proxy.school_ca.read_bytes())


def names_of(cert: x509.Certificate) -> list[str]:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)


def test_real_ech_from_an_inspected_device_gets_a_school_ca_certificate_for_the_outer_name(gateway: Gateway) -> None:
    proxy = gateway.proxy
    before = gateway.metric("classgate_tls_ech_connections_total", mode="intercepted")
    records = connect_and_hello(proxy, TEACHER, "cloudflare-ech.com",
                                ech_client_hello("cloudflare-ech.com", kind=OUTER, max_tls12=True))
    cert = first_certificate(records)
    assert cert is not None, records
    assert cert.issuer == school_ca(proxy).subject and "cloudflare-ech.com" in names_of(cert)
    assert gateway.metric("classgate_tls_ech_connections_total", mode="intercepted") == before + 1


def test_real_ech_from_a_device_without_the_ca_is_refused(gateway: Gateway) -> None:
    before = gateway.metric("classgate_tls_connections_total", mode="refused")
    records = connect_and_hello(gateway.proxy, GUEST, "cloudflare-ech.com",
                                ech_client_hello("cloudflare-ech.com", kind=OUTER, max_tls12=True))
    # No ServerHello, no certificate: an alert at most, then the connection is closed.
    assert all(kind == 0x15 for kind, _ in records), records
    assert gateway.metric("classgate_tls_connections_total", mode="refused") == before + 1
    assert gateway.metric("classgate_tls_ech_connections_total", mode="refused") >= 1


def test_grease_ech_is_decided_on_its_sni(gateway: Gateway, origin_pki) -> None:
    """The ECH extension with the real name in the SNI: passed through to the origin, whose own certificate
    comes back."""
    records = connect_and_hello(gateway.proxy, GUEST, "allowed.test",
                                ech_client_hello("allowed.test", kind=OUTER, max_tls12=True))
    cert = first_certificate(records)
    origin_ca = x509.load_pem_x509_certificate(Path(origin_pki.ca).read_bytes())
    assert cert is not None and cert.issuer == origin_ca.subject, records


def test_python_tls_still_works_through_the_gateway_dns(gateway: Gateway) -> None:
    """Sanity: an ordinary TLS client (no ECH) from a teacher is intercepted as before."""
    ctx = ssl.create_default_context(cafile=str(gateway.proxy.school_ca))
    with socket.create_connection(("127.0.0.1", gateway.proxy.port), timeout=10,
                                  source_address=(TEACHER, 0)) as sock:
        sock.sendall(b"CONNECT allowed.test:443 HTTP/1.1\r\nHost: allowed.test:443\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        with ctx.wrap_socket(sock, server_hostname="allowed.test") as tls:
            assert "allowed.test" in names_of(x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)))
