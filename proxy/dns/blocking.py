"""What the policy makes of one DNS question: the resolver's first step, pure (no network, no clock).

The same policy and client -> group mapping as the proxy, through the same call: `policy.decide_host`, the
decision the TLS gate takes on an SNI. So a name answers with the block answer exactly when the proxy would
refuse or block it for that device whatever the path: a host-wide block. A name that only a path rule blocks
(`youtube.com/shorts`), or whose block an earlier path rule could lift (`needs_path`), resolves normally and
is decided per request by the proxy. CNAME targets in an upstream answer are not decided: the device connects
with the name it asked for, and that name is what the proxy decides, so DNS and TLS never disagree.

Before the policy: Firefox's canary and iCloud Private Relay (NXDOMAIN) and the built-in encrypted-DNS
resolvers (the block answer), for every group. After it: SafeSearch for groups the proxy does not inspect
(a CNAME to the engine's safe host, `policies.search_engines.dns_safe_host`); inspected groups get SafeSearch
from the proxy's rewrite, on the real name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from classgate.policies import Decision, Policy
from classgate.policies.search_engines import dns_safe_host
from classgate.proxy.dns.known_names import CANARY, ENCRYPTED_DNS, PRIVATE_RELAY, under
from classgate.proxy.dns.vocabulary import SpecialAnswer

# forward: resolve it upstream; block: the block answer; nxdomain: NXDOMAIN; safesearch: a CNAME to `target`;
# gateway: the gateway's own address (the school CA page's name, which the proxy serves there).
PlanKind = Literal["forward", "block", "nxdomain", "safesearch", "gateway"]
DecideHost = Callable[[Policy, str, str | None, dt.datetime | None], Decision]


@dataclass(frozen=True, slots=True)
class Plan:
    kind: PlanKind
    group: str
    decision: Decision | None = None  # the policy's, when it was asked
    special: SpecialAnswer | None = None  # set when the resolver's own rule answers
    target: str | None = None  # safesearch: the engine's safe host

    @property
    def category(self) -> str:
        return self.decision.category if self.decision is not None else "uncategorized"


def plan_query(policy: Policy, name: str, client: str, at: dt.datetime | None, ca_host: str = "", *,
               decide_host: DecideHost | None = None) -> Plan:
    """The plan for question `name` (lower case, no trailing dot) from `client` (an IP address); `ca_host`:
    the name of the school CA page (reachable before the policy, as the proxy's CaPage is). `decide_host`: how
    the gates decide a host (the policy and the teachers' class actions, FilterContext.classes); default the
    policy's own."""
    if name == ca_host:
        return Plan("gateway", policy.group_of(client))
    if under(name, CANARY):
        return Plan("nxdomain", policy.group_of(client), special="canary")
    if name in PRIVATE_RELAY:
        return Plan("nxdomain", policy.group_of(client), special="private_relay")
    if under(name, ENCRYPTED_DNS):
        return Plan("block", policy.group_of(client), special="encrypted_dns")
    if not name:
        return Plan("forward", policy.group_of(client))  # the root: no host to decide (a stub's priming query)
    decision = (decide_host(policy, name, client, at) if decide_host is not None
                else policy.decide_host(name, client=client, at=at))
    if decision.action == "block" and not decision.needs_path:
        return Plan("block", decision.group, decision)
    if decision.group not in policy.tls.inspect_groups:
        target = dns_safe_host(decision.host, policy.safe_search)
        if target is not None:
            return Plan("safesearch", decision.group, decision, special="safesearch", target=target)
    return Plan("forward", decision.group, decision)
