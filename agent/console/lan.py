"""Who may open the console at all: the gateway itself and the school's LAN, never the Internet.

The same networks the gateway's resolver answers (classgate.proxy.dns.access.LanAccess): loopback, the
private ranges (RFC 1918, RFC 6598, unique local and link-local IPv6) and the networks of the policy's groups.
A client from anywhere else gets 403 before any page or sign-in form, even if the firewall in front is missing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from classgate.policies import Policy
from classgate.proxy.dns.access import LanAccess
from classgate.proxy.dns.config import PRIVATE_NETWORKS


class LanGate:
    def __init__(self, policy: Callable[[], Policy | None]) -> None:
        self._access = LanAccess(PRIVATE_NETWORKS)
        self._policy = policy

    def allows(self, remote_addr: str | None) -> bool:
        """True when the client address (as the WSGI server gives it) is on the LAN."""
        try:
            client = ipaddress.ip_address((remote_addr or "").strip("[]").split("%")[0])
        except ValueError:
            return False
        if isinstance(client, ipaddress.IPv6Address) and client.ipv4_mapped is not None:
            client = client.ipv4_mapped  # a dual-stack socket shows IPv4 clients as ::ffff:a.b.c.d
        return self._access.allows(client, self._policy())
