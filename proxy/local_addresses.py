"""The gateway's own addresses: no connection through the proxy may reach them unless the policy opens one.

Through the proxy, a device could otherwise reach whatever listens on the gateway itself (the metrics
endpoint, the proxy's own port in a loop until the file descriptors run out, a management console) by
asking for `127.0.0.1`, `0.0.0.0`, `[::ffff:127.0.0.1]`, the gateway's LAN address, a link-local address,
or a name that resolves to any of them. Every upstream connection is checked here (proxy/addons/
upstream_guard.py) after the gateway resolved it.
"""

from __future__ import annotations

import ipaddress
import itertools
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from classgate.policies.model import LocalService

log = logging.getLogger(__name__)

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Always the gateway's own, whatever its interfaces: loopback, "this host" / unspecified, link-local.
ALWAYS_LOCAL = tuple(ipaddress.ip_network(n) for n in (
    "127.0.0.0/8", "0.0.0.0/8", "169.254.0.0/16", "::1/128", "::/128", "fe80::/10",
))
REFRESH_SECONDS = 30.0  # interface addresses change (DHCP, a new VLAN): re-read them this often


def plain_address(text: str) -> IpAddress | None:
    """The IP address `text` names (brackets allowed), with IPv6 forms of an IPv4 address unwrapped
    (IPv4-mapped, IPv4-compatible, NAT64 64:ff9b::/96); None when it is not an address."""
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        embedded = embedded_ipv4(address)
        if embedded is not None:
            return embedded
    return address


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_COMPATIBLE = ipaddress.ip_network("::/96")


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it is one of the forms that reach it."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64 or (address in _COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def interface_addresses(proc: Path = Path("/proc/net")) -> frozenset[IpAddress]:
    """Every address configured on this host's interfaces (Linux: /proc/net/fib_trie and if_inet6)."""
    found: set[IpAddress] = set()
    try:
        lines = (proc / "fib_trie").read_text().splitlines()
    except OSError:
        lines = []
    # A local address appears as "|-- 10.1.2.3" followed by "/32 host LOCAL".
    for previous, line in itertools.pairwise(lines):
        if "/32 host LOCAL" in line and "|--" in previous:
            address = plain_address(previous.split("|--", 1)[1].strip())
            if address is not None:
                found.add(address)
    try:
        for line in (proc / "if_inet6").read_text().splitlines():
            raw = line.split()[0] if line.split() else ""
            if len(raw) == 32:
                found.add(ipaddress.IPv6Address(int(raw, 16)))
    except (OSError, ValueError):
        pass
    return frozenset(found)


class LocalAddresses:
    """Decides whether an address is the gateway's own; interface addresses are re-read now and then."""

    def __init__(self, read_interfaces: Callable[[], Iterable[IpAddress]] = interface_addresses,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._read = read_interfaces
        self._clock = clock
        self._interfaces: frozenset[IpAddress] = frozenset()
        self._read_at = float("-inf")

    def _current(self) -> frozenset[IpAddress]:
        now = self._clock()
        if now - self._read_at >= REFRESH_SECONDS:
            try:
                self._interfaces = frozenset(self._read())
            except Exception:
                log.warning("cannot read the gateway's interface addresses", exc_info=True)
            self._read_at = now
        return self._interfaces

    def is_local(self, address: IpAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address):
            address = embedded_ipv4(address) or address
        return any(address in network for network in ALWAYS_LOCAL) or address in self._current()


def opened(services: Iterable[LocalService], address: IpAddress, port: int) -> bool:
    """True when the policy opens this address and port of the gateway to devices."""
    return any(address in s.network and (s.port is None or s.port == port) for s in services)
