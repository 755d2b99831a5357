"""Who may ask the gateway's resolver: loopback, the policy's group networks, and the allowed networks.

The policy's groups are the networks it already knows as the school's; the allowed networks (`--dns-allow`,
by default the private ranges) cover devices in no group, which are the school's too (guests). Anything else
is refused, so the gateway is no open resolver even where the firewall in front of it is missing. Answers
are memoised per client address for the policy in force (bounded; a new policy starts afresh).
"""

from __future__ import annotations

from typing import Final

from classgate.policies import Policy
from classgate.proxy.dns.config import LOOPBACK, IpNetwork
from classgate.proxy.local_addresses import IpAddress

MAX_MEMO: Final = 65_536


class LanAccess:
    def __init__(self, allowed: tuple[IpNetwork, ...]) -> None:
        self.allowed = allowed
        self._policy: Policy | None = None
        self._networks: tuple[IpNetwork, ...] = (*LOOPBACK, *allowed)
        self._memo: dict[IpAddress, bool] = {}

    def allows(self, client: IpAddress, policy: Policy | None) -> bool:
        """True when `client` (an unwrapped address: no IPv4-mapped IPv6) may use the resolver."""
        if policy is not self._policy:
            self._policy = policy
            groups = policy.document.groups.values() if policy is not None else ()
            self._networks = (*LOOPBACK, *self.allowed, *(n for g in groups for n in g.networks))
            self._memo = {}
        known = self._memo.get(client)
        if known is not None:
            return known
        allowed = any(client.version == n.version and client in n for n in self._networks)
        if len(self._memo) >= MAX_MEMO:
            self._memo.clear()
        self._memo[client] = allowed
        return allowed
