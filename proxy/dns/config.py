"""The resolver's settings, as `classgate run --dns ...` builds them: one typed value.

Upstreams: the resolvers the admin names (`--dns-upstream`, repeatable, port 53 unless given), else the
system's (`nameserver` lines of /etc/resolv.conf). Who may ask: the gateway itself (127.0.0.1, ::1), the networks of the policy's groups
(read from the policy in force, so a new group is served at once), and `--dns-allow` networks, which default to
the private ranges a school LAN uses (RFC 1918, RFC 6598, unique local and link-local IPv6), so devices in no
group (the "default" group: guests) still resolve. A global address in none of them is refused: the gateway is
never an open resolver, even if the firewall in front of it is missing.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from classgate.proxy.address import Address, parse_address

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

PRIVATE_NETWORKS: Final[tuple[IpNetwork, ...]] = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "fc00::/7", "fe80::/10",
))
# The gateway itself: its own processes ask from 127.0.0.1 or ::1 (the rest of 127/8 is no device).
LOOPBACK: Final[tuple[IpNetwork, ...]] = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128"))
RESOLV_CONF: Final = Path("/etc/resolv.conf")

DEFAULT_RATE: Final = 100.0  # queries per second per client, sustained...
DEFAULT_BURST: Final = 400.0  # ... and at once: a browser opening a heavy page asks A, AAAA, HTTPS for ~100 names
DEFAULT_CACHE_ENTRIES: Final = 10_000
DEFAULT_TIMEOUT: Final = 2.0  # seconds per upstream try


class DnsConfigError(ValueError):
    """A resolver setting that cannot work; the message says what to write instead."""


@dataclass(frozen=True)
class DnsConfig:
    listen: Address
    upstreams: tuple[Address, ...] = ()  # empty: the system's resolvers, read at start
    allow: tuple[IpNetwork, ...] = PRIVATE_NETWORKS  # who may ask, beside loopback and the policy's groups
    rate: float = DEFAULT_RATE
    burst: float = DEFAULT_BURST
    cache_entries: int = DEFAULT_CACHE_ENTRIES
    timeout: float = DEFAULT_TIMEOUT


def parse_upstream(spec: str) -> Address:
    """"ADDR", "ADDR:PORT", "[v6]" or "[v6]:PORT" (an IP address; port 53 unless given)."""
    text = spec.strip()
    bare = text.strip("[]") if text.startswith("[") and text.endswith("]") else text
    try:
        return Address(str(ipaddress.ip_address(bare)), 53)
    except ValueError:
        pass
    try:
        address = parse_address(text)
        ipaddress.ip_address(address.host)
    except ValueError:
        raise DnsConfigError(f"{spec!r}: an upstream is an IP address, optionally with :PORT "
                             "(e.g. 192.168.1.1 or [2001:db8::53]:5353)") from None
    if address.port == 0:
        raise DnsConfigError(f"{spec!r}: the port must be between 1 and 65535")
    return address


def parse_network(spec: str) -> IpNetwork:
    try:
        return ipaddress.ip_network(spec.strip(), strict=False)
    except ValueError:
        raise DnsConfigError(f"{spec!r}: expected a network such as 10.10.0.0/16 or fd00::/64") from None


def system_upstreams(resolv_conf: Path = RESOLV_CONF) -> tuple[Address, ...]:
    """The `nameserver` addresses of resolv.conf (port 53), in order; () when there are none."""
    try:
        lines = resolv_conf.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ()
    found: list[Address] = []
    for line in lines:
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(words) >= 2 and words[0] == "nameserver":
            try:
                found.append(Address(str(ipaddress.ip_address(words[1].split("%", 1)[0])), 53))
            except ValueError:
                continue
    return tuple(dict.fromkeys(found))


def check_upstreams(listen: Address, upstreams: tuple[Address, ...]) -> None:
    """Refuse an upstream that is the listener itself (every query would loop until it timed out)."""
    if not upstreams:
        raise DnsConfigError("no upstream resolver: /etc/resolv.conf names none; give --dns-upstream ADDR")
    for upstream in upstreams:
        same_port = upstream.port == listen.port
        address = ipaddress.ip_address(upstream.host)
        listen_ip = _ip_or_none(listen.host)
        wildcard = listen_ip is not None and listen_ip.is_unspecified
        if same_port and (address == listen_ip or (wildcard and (address.is_loopback or address.is_unspecified))):
            raise DnsConfigError(f"--dns-upstream {upstream} is this listener ({listen}): the queries would loop; "
                                 "name the resolver it should ask")


def _ip_or_none(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
