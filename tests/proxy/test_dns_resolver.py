"""proxy/dns/resolver.py and server.py in-process: answers per plan, one upstream query per question in flight,
ECH stripped before the cache, and what the gateway answered held against the SNI by the TLS gate."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import struct
from collections import Counter
from pathlib import Path

import pytest
from mitmproxy.dns import ResourceRecord
from mitmproxy.net.dns import https_records
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import taddons

from classgate.proxy.addons.tls_gate import TlsGate
from classgate.proxy.address import Address
from classgate.proxy.clock import Clock
from classgate.proxy.context import FilterContext
from classgate.proxy.dns.access import LanAccess
from classgate.proxy.dns.cache import AnswerCache
from classgate.proxy.dns.config import PRIVATE_NETWORKS
from classgate.proxy.dns.ratelimit import RateLimiter
from classgate.proxy.dns.resolver import GatewayResolver, NoPolicy
from classgate.proxy.dns.server import QueryHandler
from classgate.proxy.dns.upstream import Upstream, UpstreamError
from classgate.proxy.dns.wire import Answer, parse_query
from classgate.proxy.failsafe import FailSafe
from classgate.proxy.name_addresses import NameAddresses, ResolveError
from classgate.proxy.policy_holder import PolicyHolder
from tests.proxy.dnstest_support import AAAA, CLOUDFLARE_ECH, HTTPS, A, https_rdata, query_bytes
from tests.proxy.proxytest_support import GUEST, STUDENT, TEACHER, TEST_POLICY
from tests.proxy.proxytest_tls import hello_data

GATEWAY = ipaddress.ip_address("10.10.0.1")
MONDAY_0900 = dt.datetime(2026, 11, 23, 9, 0)

# What the "Internet" answers, per (name, type).
RECORDS: dict[tuple[str, int], list[tuple[int, bytes]]] = {
    ("allowed.test", A): [(A, bytes([192, 0, 2, 10])), (A, bytes([192, 0, 2, 11]))],
    ("allowed.test", AAAA): [(AAAA, ipaddress.ip_address("2001:db8::10").packed)],
    ("forcesafesearch.google.com", A): [(A, bytes([216, 239, 38, 120]))],
    ("ech.test", HTTPS): [(HTTPS, https_rdata(1, "", {1: b"\x02h2", 5: base64.b64decode(CLOUDFLARE_ECH)}))],
}


class FakeUpstream(Upstream):
    """The upstream's interface, answering from RECORDS after a short wait (so questions overlap)."""

    def __init__(self) -> None:
        super().__init__([Address("192.0.2.53", 53)])
        self.asked: Counter[bytes] = Counter()
        self.fail = False

    async def exchange(self, question: bytes, *, do: bool, cd: bool) -> Answer:
        self.asked[question] += 1
        await asyncio.sleep(0.01)
        if self.fail:
            raise UpstreamError("down")
        labels, offset = [], 0
        while question[offset]:
            labels.append(question[offset + 1:offset + 1 + question[offset]].decode())
            offset += 1 + question[offset]
        name = ".".join(labels).lower()
        (qtype,) = struct.unpack_from("!H", question, offset + 1)
        records = RECORDS.get((name, qtype))
        if records is None:
            return Answer(3)
        return Answer(0, [ResourceRecord(name, t, 1, 120, data) for t, data in records])


class Events:
    def __init__(self) -> None:
        self.seen: Counter[tuple] = Counter()

    def __getattr__(self, name: str):
        def record(*args: object) -> None:
            self.seen[(name, *args)] += 1
        return record


@pytest.fixture
def holder(tmp_path: Path) -> PolicyHolder:
    path = tmp_path / "policy.yaml"
    path.write_text(TEST_POLICY, encoding="utf-8")
    h = PolicyHolder(path, cache_dir=tmp_path / "compiled")
    h.load()
    return h


def resolver(holder: PolicyHolder, names: NameAddresses | None = None) -> tuple[GatewayResolver, FakeUpstream, Events]:
    events = Events()
    context = FilterContext(holder, FailSafe(), Clock(MONDAY_0900), names=names or NameAddresses(), events=events)
    upstream = FakeUpstream()
    return GatewayResolver(context, upstream, AnswerCache(100), ca_host="classgate.ca"), upstream, events


def ask(r: GatewayResolver, name: str, qtype: int = A, client: str = GUEST,
        local: ipaddress.IPv4Address | None = GATEWAY) -> Answer:
    return asyncio.run(r.resolve(parse_query(query_bytes(name, qtype)), ipaddress.ip_address(client), local))


def rows(answer: Answer) -> list[tuple[str, int, str]]:
    out = []
    for rr in answer.answers:
        shown = str(ipaddress.ip_address(rr.data)) if rr.type in (A, AAAA) else rr.domain_name if rr.type == 5 else "…"
        out.append((rr.name, rr.type, shown))
    return out


@pytest.mark.parametrize(
    ("name", "qtype", "client", "local", "rcode", "answers"),
    [
        ("allowed.test", A, GUEST, GATEWAY, 0, [("allowed.test", A, "192.0.2.10"), ("allowed.test", A, "192.0.2.11")]),
        ("blocked.test", A, GUEST, GATEWAY, 0, [("blocked.test", A, "10.10.0.1")]),  # the gateway's own address
        ("blocked.test", AAAA, GUEST, GATEWAY, 0, []),  # no IPv6 address known for it: no data
        ("blocked.test", HTTPS, STUDENT, GATEWAY, 0, []),
        ("blocked.test", A, GUEST, None, 3, []),  # the address unknown: NXDOMAIN
        ("www.blocked.test", AAAA, TEACHER, ipaddress.ip_address("fd00::1"), 0, [("www.blocked.test", AAAA, "fd00::1")]),
        ("classgate.ca", A, STUDENT, GATEWAY, 0, [("classgate.ca", A, "10.10.0.1")]),  # the CA page
        ("use-application-dns.net", A, TEACHER, GATEWAY, 3, []),
        ("mask.icloud.com", AAAA, GUEST, GATEWAY, 3, []),
        ("www.google.com", A, GUEST, GATEWAY, 0, [("www.google.com", 5, "forcesafesearch.google.com"),
                                                  ("forcesafesearch.google.com", A, "216.239.38.120")]),
        ("www.google.com", A, TEACHER, GATEWAY, 3, []),  # inspected: asked as it is (unknown to the fake)
        ("nowhere.test", A, GUEST, GATEWAY, 3, []),
    ],
)
def test_answers(holder: PolicyHolder, name: str, qtype: int, client: str, local, rcode: int, answers: list) -> None:
    r, _, _ = resolver(holder)
    answer = ask(r, name, qtype, client, local)
    assert (answer.rcode, rows(answer)) == (rcode, answers)


def test_nxdomain_as_the_block_answer(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(TEST_POLICY + "dns: {block_answer: nxdomain}\n", encoding="utf-8")
    h = PolicyHolder(path, cache_dir=tmp_path / "compiled")
    h.load()
    r, upstream, _ = resolver(h)
    assert ask(r, "blocked.test").rcode == 3 and not upstream.asked  # never asked upstream


def test_one_upstream_query_per_question_in_flight_then_the_cache(holder: PolicyHolder) -> None:
    r, upstream, events = resolver(holder)

    async def burst() -> list[Answer]:
        queries = [parse_query(query_bytes("allowed.test", query_id=i)) for i in range(50)]
        return await asyncio.gather(*(r.resolve(q, ipaddress.ip_address(GUEST), GATEWAY) for q in queries))

    answers = asyncio.run(burst())
    assert all(len(a.answers) == 2 for a in answers) and sum(upstream.asked.values()) == 1
    ask(r, "allowed.test")
    assert sum(upstream.asked.values()) == 1 and events.seen[("record_dns_cache", "hit")] == 1


def test_ech_is_stripped_before_the_cache_and_counted(holder: PolicyHolder) -> None:
    r, _, events = resolver(holder)
    for _ in range(3):
        answer = ask(r, "ech.test", HTTPS)
        assert https_records.unpack(answer.answers[0].data).params == {1: b"\x02h2"}
    assert events.seen[("record_dns_ech_stripped", "https", 1)] == 1  # once: then served from the cache


def test_queries_are_counted_by_category_group_and_action(holder: PolicyHolder) -> None:
    r, _, events = resolver(holder)
    ask(r, "blocked.test", client=STUDENT)
    ask(r, "allowed.test", client=GUEST)
    ask(r, "mask.icloud.com", client=GUEST)
    assert events.seen[("record_dns_query", "gambling", "students", "block")] == 1
    assert events.seen[("record_dns_query", "uncategorized", "guests", "allow")] == 1
    assert events.seen[("record_dns_special", "private_relay")] == 1


def test_no_policy_answers_nothing(tmp_path: Path) -> None:
    r, upstream, _ = resolver(PolicyHolder(None))
    with pytest.raises(NoPolicy):
        ask(r, "allowed.test")
    assert not upstream.asked


@pytest.mark.parametrize(
    ("data", "client", "rcode"),
    [
        (query_bytes("allowed.test"), GUEST, 0),
        (query_bytes("allowed.test"), "8.8.8.8", 5),  # not the LAN: REFUSED
        (query_bytes("version.bind", 16, qclass=3), GUEST, 5),
        (b"\x12\x34\x01", GUEST, 1),  # FORMERR
        (query_bytes("allowed.test", flags=0x8180), GUEST, None),  # a response: dropped
    ],
)
def test_admission(holder: PolicyHolder, data: bytes, client: str, rcode: int | None) -> None:
    r, _, _ = resolver(holder)
    handler = QueryHandler(r, LanAccess(PRIVATE_NETWORKS + (ipaddress.ip_network("127.0.0.0/8"),)),
                           RateLimiter(100, 100), FailSafe())
    outcome = handler.admit(data, ipaddress.ip_address(client))
    if isinstance(outcome, bytes):
        reply = outcome
    elif outcome is None:
        reply = None
    else:
        reply = asyncio.run(handler.answer(outcome, ipaddress.ip_address(client), GATEWAY, tcp=False))
    assert (reply[3] & 0xF if reply else None) == rcode


def test_upstream_down_is_servfail_and_counted(holder: PolicyHolder) -> None:
    r, upstream, events = resolver(holder)
    upstream.fail = True
    handler = QueryHandler(r, LanAccess(PRIVATE_NETWORKS), RateLimiter(100, 100), FailSafe())
    reply = asyncio.run(handler.answer(parse_query(query_bytes("allowed.test")), ipaddress.ip_address(GUEST),
                                       GATEWAY, tcp=False))
    assert reply[3] & 0xF == 2 and events.seen[("record_dns_failure", "upstream_failed")] == 1


# --- the TLS gate holds passthroughs to what the gateway answered (transparent mode) --------------------

async def nothing_resolves(name: str) -> list:
    raise ResolveError("the gateway's own lookup knows nothing here")


@pytest.mark.parametrize(
    ("asked", "destination", "mode"),
    [
        (True, "192.0.2.11", "passthrough"),  # an address the gateway gave for the SNI
        (True, "192.0.2.99", "refused"),  # an address it never gave: unverified
        (False, "192.0.2.10", "refused"),  # never asked: the gateway's own lookup fails too
    ],
)
def test_passthrough_destination_must_be_an_answer_the_gateway_gave(holder: PolicyHolder, asked: bool,
                                                                   destination: str, mode: str) -> None:
    names = NameAddresses(lookup=nothing_resolves)
    r, _, _ = resolver(holder, names)
    if asked:
        ask(r, "allowed.test", client=GUEST)
    gate = TlsGate(r.context)
    with taddons.context() as tctx:
        data = hello_data(tctx, GUEST, "allowed.test", server=(destination, 443))
        data.context.client.proxy_mode = ProxyMode.parse("transparent")
        pending = gate.tls_clienthello(data)
        if pending is not None:
            asyncio.run(pending)
    assert (gate.counts["passthrough"], gate.counts["refused"]) == ((1, 0) if mode == "passthrough" else (0, 1))
    assert gate.unverified == (0 if mode == "passthrough" else 1)


def test_safesearch_answers_keep_the_sni_honest(holder: PolicyHolder) -> None:
    """A phone told www.google.com is forcesafesearch's address connects there with SNI www.google.com."""
    names = NameAddresses(lookup=nothing_resolves)
    r, _, _ = resolver(holder, names)
    ask(r, "www.google.com", client=GUEST)
    assert names.cached("www.google.com") == (ipaddress.ip_address("216.239.38.120"),)
