"""Groups: client address -> group, most specific network first, anything odd -> "default"."""

from __future__ import annotations

import ipaddress

import pytest

from classgate.policies.groups import GroupResolver, parse_network
from classgate.policies.model import Group

GROUPS = [
    Group("students", (ipaddress.ip_network("10.10.0.0/16"),)),
    Group("lab", (ipaddress.ip_network("10.10.5.0/24"),)),           # inside students: more specific wins
    Group("teachers", (ipaddress.ip_network("10.20.0.0/24"), ipaddress.ip_network("10.20.9.7/32"))),
    Group("phones", (ipaddress.ip_network("10.30.0.0/16"), ipaddress.ip_network("fd00:30::/64"))),
]


@pytest.mark.parametrize(("ip", "group"), [
    ("10.10.1.2", "students"),
    ("10.10.5.9", "lab"),
    ("10.10.255.255", "students"),
    ("10.11.0.1", "default"),
    ("10.20.0.200", "teachers"),
    ("10.20.9.7", "teachers"),
    ("10.30.4.4", "phones"),
    ("fd00:30::1234", "phones"),
    ("FD00:30:0:0::1", "phones"),
    ("fd00:31::1", "default"),
    ("::ffff:10.10.1.2", "students"),   # IPv4 client on a dual-stack socket
    ("[fd00:30::1]", "phones"),
    ("fd00:30::1%eth0", "phones"),
    (" 10.10.1.2 ", "students"),
    ("not-an-ip", "default"),
    ("", "default"),
    (None, "default"),
    ("10.10.1", "default"),
])
def test_group_of(ip, group):
    resolver = GroupResolver(GROUPS)
    assert resolver.group_of(ip) == group
    assert resolver.group_of(ip) == group  # the cached answer is the same


def test_group_of_accepts_a_mapping_and_no_groups():
    assert GroupResolver({g.name: g for g in GROUPS}).group_of("10.10.5.1") == "lab"
    assert GroupResolver([]).group_of("10.10.5.1") == "default"


def test_cache_stays_bounded():
    from classgate.policies import groups as module

    resolver = GroupResolver(GROUPS)
    for i in range(module._CACHE_LIMIT + 10):
        resolver.group_of(f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}")
    assert len(resolver._cache) <= module._CACHE_LIMIT


@pytest.mark.parametrize(("text", "message"), [
    ("10.10.1.0/16", "host bits set; did you mean 10.10.0.0/16"),
    ("300.1.1.1/8", "not a network"),
    ("10.10.0.0/33", "not a network"),
    ("students", "not a network"),
])
def test_parse_network_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_network(text)


def test_parse_network_single_address():
    assert parse_network("10.1.2.3") == ipaddress.ip_network("10.1.2.3/32")
