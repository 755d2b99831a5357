"""Which addresses a name has, as the gateway itself resolves it: a small cache in front of the system resolver.

Used to keep a connection honest about where it goes: a passthrough connection whose original destination
is not among its SNI name's addresses is not where its name says (a VPN behind a bank's name), and every
upstream connection is pinned to an address the gateway resolved and checked itself (no second lookup that
could answer differently: DNS rebinding). Entries live `TTL_SECONDS`; the system resolver gives no TTLs.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Final

from classgate.proxy.local_addresses import IpAddress, plain_address

TTL_SECONDS: Final = 60.0
MAX_NAMES: Final = 20_000  # a school resolves a few thousand names an hour; this only bounds a flood
LOOKUP_TIMEOUT_SECONDS: Final = 5.0

Lookup = Callable[[str], Awaitable[list[IpAddress]]]


class ResolveError(Exception):
    """The name does not resolve (or not in time): the connection cannot be checked, so it is refused."""


async def system_lookup(name: str) -> list[IpAddress]:
    """The name's addresses from the system resolver (hosts file, DNS), in the order it prefers them."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(name, None, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP),
            LOOKUP_TIMEOUT_SECONDS,
        )
    except (OSError, UnicodeError) as e:
        raise ResolveError(f"cannot resolve: {getattr(e, 'strerror', None) or e}") from None
    except TimeoutError:
        raise ResolveError(f"no answer within {LOOKUP_TIMEOUT_SECONDS:.0f} s") from None
    out: list[IpAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in out:
            out.append(address)
    return out


class NameAddresses:
    def __init__(self, lookup: Lookup = system_lookup, clock: Callable[[], float] = time.monotonic) -> None:
        self._lookup = lookup
        self._clock = clock
        self._cache: dict[str, tuple[float, tuple[IpAddress, ...]]] = {}

    def cached(self, name: str) -> tuple[IpAddress, ...] | None:
        """The name's addresses if they are known and fresh, else None (no lookup)."""
        entry = self._cache.get(name)
        if entry is None or entry[0] < self._clock():
            return None
        return entry[1]

    async def addresses(self, name: str) -> tuple[IpAddress, ...]:
        """The name's addresses (an IP literal is its own); raises ResolveError."""
        literal = plain_address(name)
        if literal is not None:
            return (literal,)
        known = self.cached(name)
        if known is not None:
            return known
        found = tuple(await self._lookup(name))
        if not found:
            raise ResolveError("the name has no address")
        if len(self._cache) >= MAX_NAMES:
            self._cache.clear()
        self._cache[name] = (self._clock() + TTL_SECONDS, found)
        return found

    def learn(self, name: str, addresses: tuple[IpAddress, ...], ttl: float) -> None:
        """Record addresses the gateway's own DNS answered for `name` (they count as resolved by the gateway)."""
        if len(self._cache) >= MAX_NAMES:
            self._cache.clear()
        old = self.cached(name) or ()
        self._cache[name] = (self._clock() + max(ttl, TTL_SECONDS), tuple(dict.fromkeys((*old, *addresses))))

    async def has_address(self, name: str, address: IpAddress) -> bool:
        """True when `address` is one of `name`'s addresses (looked up once more if the cache says no)."""
        known = self.cached(name)
        if known is not None and address in known:
            return True
        self._cache.pop(name, None)
        try:
            return address in await self.addresses(name)
        except ResolveError:
            return False
