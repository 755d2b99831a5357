"""Every upstream connection: resolved by the gateway, refused if it reaches the gateway itself, pinned.

mitmproxy opens an upstream connection to a name or an address a client chose. Before it does
(`server_connect`), this resolves the name itself, refuses the connection when any of its addresses is the
gateway's own (proxy/local_addresses.py) and the policy does not open it, and points the connection at the
address it checked, so mitmproxy does not resolve the name a second time (an attacker's DNS could answer
127.0.0.1 the second time: rebinding). Once connected (`server_connected`) the connection gets its name
back, so mitmproxy still reuses it for later requests to the same name.
"""

from __future__ import annotations

import logging

from mitmproxy import connection
from mitmproxy.proxy import server_hooks

from classgate.policies import Policy
from classgate.policies.vocabulary import DEFAULT_GROUP, UNCATEGORIZED
from classgate.proxy.context import FilterContext
from classgate.proxy.local_addresses import LocalAddresses, opened, plain_address
from classgate.proxy.name_addresses import NameAddresses, ResolveError
from classgate.proxy.verdict import Verdict

log = logging.getLogger(__name__)

REFUSED_LOCAL = "refused by the school network filter: that address is the gateway itself"


class UpstreamGuard:
    def __init__(self, context: FilterContext, local: LocalAddresses, names: NameAddresses) -> None:
        self.context = context
        self.local = local
        self.names = names
        self._named: dict[str, tuple[str, int]] = {}  # server connection id -> the address it was asked for

    async def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        server = data.server
        if server.error or not server.address:
            return  # refused already by an earlier component
        host, port = str(server.address[0]), int(server.address[1])
        try:
            addresses = await self.names.addresses(host)
        except ResolveError as e:
            server.error = str(e)
            return
        policy = self.context.holder.policy
        services = policy.document.local_services if policy is not None else ()
        own = [a for a in addresses if self.local.is_local(a) and not opened(services, a, port)]
        if own:
            server.error = REFUSED_LOCAL
            self._refused(data.client, policy)
            return
        if plain_address(host) is None:  # a name: connect to the address checked here, not a new lookup
            if server.sni is None and data.client.sni is None:
                server.sni = host  # TLS to the server names the host, as it would have without the pin
            self._named[server.id] = (host, port)
            server.address = (str(addresses[0]), port)

    def server_connected(self, data: server_hooks.ServerConnectionHookData) -> None:
        self._restore(data.server)

    def server_connect_error(self, data: server_hooks.ServerConnectionHookData) -> None:
        self._restore(data.server)

    def forget(self, server: connection.Server) -> None:
        """A connection it pinned that mitmproxy will not open (a passthrough relayed by the gateway itself,
        proxy/addons/passthrough_splice.py): nothing to restore, nothing to keep."""
        self._named.pop(server.id, None)

    def _restore(self, server: connection.Server) -> None:
        named = self._named.pop(server.id, None)
        if named is None:
            return
        if server.state is connection.ConnectionState.CLOSED:
            server.address = named
        else:
            # mitmproxy refuses `server.address = ...` on an open connection, as a new destination would
            # be wrong there. This is the same destination under the name it was asked for, which is what
            # mitmproxy's connection reuse compares (the HTTP layer's connection_spec_matches); without it
            # every request to a name would open a new upstream connection.
            vars(server)["address"] = named

    def _refused(self, client: connection.Client, policy: Policy | None) -> None:
        group = policy.group_of(client.peername[0] if client.peername else None) if policy else DEFAULT_GROUP
        # No address in the log: which group tried is enough to notice a student probing the gateway.
        log.info("refused a connection to the gateway itself group=%s", group)
        self.context.verdicts.connection_decided(
            Verdict(action="block", tier="gateway", group=group, category=UNCATEGORIZED,
                    policy_version=policy.version if policy else None), None)
