"""The resolver's bounded state and its settings: the answer cache, the rate limiter, who may ask, upstreams."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from mitmproxy.dns import ResourceRecord

from classgate.policies import load_policy
from classgate.proxy.address import Address
from classgate.proxy.dns.access import LanAccess
from classgate.proxy.dns.cache import AnswerCache, answer_ttl, cache_key
from classgate.proxy.dns.config import (
    PRIVATE_NETWORKS,
    DnsConfigError,
    check_upstreams,
    parse_network,
    parse_upstream,
    system_upstreams,
)
from classgate.proxy.dns.ratelimit import RateLimiter
from classgate.proxy.dns.wire import Answer
from tests.proxy.dnstest_support import SOA, A, name_bytes


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def a_record(ttl: int, last: int = 1) -> ResourceRecord:
    return ResourceRecord("a.test", A, 1, ttl, bytes([192, 0, 2, last]))


def soa(ttl: int, minimum: int) -> ResourceRecord:
    return ResourceRecord("test", SOA, 1, ttl, name_bytes("ns.test") * 2 + (1).to_bytes(4, "big") * 4
                          + minimum.to_bytes(4, "big"))


@pytest.mark.parametrize(
    ("answer", "ttl"),
    [
        (Answer(0, [a_record(300), a_record(60, 2)]), 60),  # the smallest
        (Answer(0, [a_record(10 ** 6)]), 86_400),  # at most a day
        (Answer(0, [a_record(0)]), 0),  # TTL 0: not cached
        (Answer(3, authorities=[soa(3600, 120)]), 120),  # NXDOMAIN: the SOA's negative TTL
        (Answer(0, authorities=[soa(3600, 3600)]), 300),  # no data: at most 5 minutes
        (Answer(3), 0),  # NXDOMAIN without an SOA: not cached
        (Answer(2), 0),  # SERVFAIL: never
        (Answer(5), 0),  # REFUSED: never
    ],
)
def test_answer_ttl(answer: Answer, ttl: int) -> None:
    assert answer_ttl(answer) == ttl


def test_cached_answers_age_and_expire() -> None:
    clock = FakeClock()
    cache = AnswerCache(10, clock)
    key = cache_key(b"\x01a\x04test\x00\x00\x01\x00\x01", do=False, cd=False)
    cache.put(key, Answer(0, [a_record(300), a_record(60, 2)]))
    clock.now += 25
    aged = cache.get(key)
    assert aged is not None and [rr.ttl for rr in aged.answers] == [275, 35]
    clock.now += 35
    assert cache.get(key) is None and len(cache) == 0


def test_cache_keys_follow_case_and_dnssec_bits() -> None:
    question = b"\x01A\x04TEST\x00\x00\x01\x00\x01"
    assert cache_key(question, do=False, cd=False) == cache_key(question.lower(), do=False, cd=False)
    assert cache_key(question, do=True, cd=False) != cache_key(question, do=False, cd=False)


def test_cache_is_bounded_least_recently_used_first() -> None:
    cache = AnswerCache(3, FakeClock())
    keys = [cache_key(bytes([i]), do=False, cd=False) for i in range(5)]
    for key in keys[:3]:
        cache.put(key, Answer(0, [a_record(300)]))
    assert cache.get(keys[0]) is not None  # now the most recent
    for key in keys[3:]:
        cache.put(key, Answer(0, [a_record(300)]))
    assert len(cache) == 3
    assert [cache.get(k) is not None for k in keys] == [True, False, False, True, True]


def test_rate_limit_per_client_with_burst_and_refill() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=10, burst=20, clock=clock)
    assert sum(limiter.allow("10.0.0.1") for _ in range(30)) == 20  # the burst, then nothing
    assert limiter.allow("10.0.0.2")  # another device has its own bucket
    clock.now += 0.5
    assert sum(limiter.allow("10.0.0.1") for _ in range(30)) == 5  # 10/s for half a second
    clock.now += 100
    assert sum(limiter.allow("10.0.0.1") for _ in range(30)) == 20  # never more than the burst


def test_rate_limit_table_is_bounded() -> None:
    limiter = RateLimiter(rate=1, burst=1, max_clients=100, clock=FakeClock())
    for i in range(1000):
        limiter.allow(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter) == 100


POLICY = "classgate: 1\nname: lan\ngroups:\n  students: {networks: [203.0.113.0/24, '2001:db8:10::/48']}\n"


@pytest.mark.parametrize(
    ("client", "allowed", "allows"),
    [
        ("127.0.0.1", PRIVATE_NETWORKS, True),  # the gateway itself
        ("::1", (), True),
        ("10.10.3.4", PRIVATE_NETWORKS, True),  # a private LAN, in no group (a guest)
        ("192.168.1.20", PRIVATE_NETWORKS, True),
        ("fd00:30::5", PRIVATE_NETWORKS, True),
        ("203.0.113.9", (), True),  # a group's network, public addresses
        ("2001:db8:10::9", (), True),
        ("8.8.8.8", PRIVATE_NETWORKS, False),  # the Internet
        ("2001:4860::8888", PRIVATE_NETWORKS, False),
        ("127.0.0.9", (), False),  # loopback is the gateway's own 127.0.0.1 only
        ("10.10.3.4", (parse_network("10.20.0.0/16"),), False),  # --dns-allow replaces the private default
        ("10.20.3.4", (parse_network("10.20.0.0/16"),), True),
    ],
)
def test_who_may_ask(tmp_path: Path, client: str, allowed: tuple, allows: bool) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    access = LanAccess(allowed)
    policy = load_policy(path)
    assert access.allows(ipaddress.ip_address(client), policy) is allows
    assert access.allows(ipaddress.ip_address(client), policy) is allows  # memoised: the same answer


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("192.168.1.1", Address("192.168.1.1", 53)),
        ("127.0.0.1:5353", Address("127.0.0.1", 5353)),
        ("2001:db8::53", Address("2001:db8::53", 53)),
        ("[2001:db8::53]", Address("2001:db8::53", 53)),
        ("[2001:db8::53]:5300", Address("2001:db8::53", 5300)),
    ],
)
def test_upstream_specs(spec: str, expected: Address) -> None:
    assert parse_upstream(spec) == expected


@pytest.mark.parametrize("spec", ["dns.example", "1.2.3.4:0", "1.2.3.4:99999", "", "[::1"])
def test_bad_upstream_specs(spec: str) -> None:
    with pytest.raises(DnsConfigError):
        parse_upstream(spec)


def test_system_upstreams_from_resolv_conf(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# comment\nsearch school.example\nnameserver 10.0.0.1\nnameserver fe80::1%eth0\n"
                    "nameserver 10.0.0.1\nnameserver not-an-ip\noptions edns0\n")
    assert system_upstreams(conf) == (Address("10.0.0.1", 53), Address("fe80::1", 53))
    assert system_upstreams(tmp_path / "missing") == ()


@pytest.mark.parametrize(
    ("listen", "upstream", "loops"),
    [
        (Address("127.0.0.1", 53), Address("127.0.0.1", 53), True),
        (Address("0.0.0.0", 8053), Address("127.0.0.1", 8053), True),
        (Address("0.0.0.0", 8053), Address("127.0.0.1", 53), False),  # unbound beside it, on 53
        (Address("10.0.0.1", 53), Address("10.0.0.2", 53), False),
    ],
)
def test_an_upstream_that_is_the_listener_is_refused(listen: Address, upstream: Address, loops: bool) -> None:
    if loops:
        with pytest.raises(DnsConfigError, match="loop"):
            check_upstreams(listen, (upstream,))
    else:
        check_upstreams(listen, (upstream,))


def test_no_upstream_at_all_is_refused() -> None:
    with pytest.raises(DnsConfigError, match="--dns-upstream"):
        check_upstreams(Address("0.0.0.0", 8053), ())
