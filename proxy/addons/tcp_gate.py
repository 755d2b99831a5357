"""Decide raw TCP tunnels: bytes that are neither TLS nor HTTP, inside a CONNECT or a redirected connection.

For inspected groups the TLS gate waits for the ClientHello instead of deciding the CONNECT, so the
block page can be shown; a client that then sends no ClientHello at all (any other protocol through
the tunnel) would reach the CONNECT target undecided. This component decides the target when the raw
TCP stream starts, and cuts the connection when the policy blocks it or cannot be asked.
"""

from __future__ import annotations

import logging

from mitmproxy import connection, http, tcp
from mitmproxy.proxy import server_hooks

from classgate.proxy.context import FilterContext
from classgate.proxy.verdict import Verdict

log = logging.getLogger(__name__)


class TcpTunnelError(Exception):
    """No policy to decide a raw TCP tunnel with: it is cut."""


class TcpGate:
    def __init__(self, context: FilterContext) -> None:
        self.context = context
        self._connect_targets: dict[str, str] = {}  # client connection id -> the host it CONNECTed to
        self._refused: set[str] = set()  # client connection ids whose raw tunnel is refused

    def http_connect(self, flow: http.HTTPFlow) -> None:
        self._connect_targets[flow.client_conn.id] = flow.request.host

    def client_disconnected(self, client: connection.Client) -> None:
        self._connect_targets.pop(client.id, None)
        self._refused.discard(client.id)

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        if data.client.id in self._refused:
            data.server.error = "refused by the school network filter"

    def tcp_message(self, flow: tcp.TCPFlow) -> None:
        if flow.client_conn.id in self._refused and flow.messages:
            flow.messages[-1].content = b""

    def tcp_start(self, flow: tcp.TCPFlow) -> None:
        if flow.error or not flow.live:
            return
        try:
            policy = self.context.holder.policy
            if policy is None:
                raise TcpTunnelError("no policy is loaded")
            peer = flow.client_conn.peername
            client = peer[0] if peer else None
            target = self._connect_targets.get(flow.client_conn.id)
            if target is None:
                address = flow.server_conn.address
                target = str(address[0]) if address else ""
            at = self.context.clock.decision_time(policy.timezone)
            d = self.context.classes.decide_host(policy, target, client, at)
            if d.allowed:  # a warn is cut too: a raw tunnel cannot show the warn page
                return
            log.info("refused TCP tunnel group=%s category=%s rule=%s tier=%s", d.group, d.category, d.rule, d.tier)
            log.debug("refused TCP tunnel host=%s", d.host)
            self._refused.add(flow.client_conn.id)
            self.context.verdicts.connection_decided(Verdict.of(d, policy_version=policy.version), None)
        except Exception as e:  # noqa: BLE001 - fail closed: an undecided tunnel is cut
            self._refused.add(flow.client_conn.id)
            self.context.failsafe.failed("connect", e)
