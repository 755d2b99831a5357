"""Decide HTTPS before any interception, from the CONNECT target and the TLS ClientHello (SNI).

For each new TLS connection (policy `tls` section):
- destination blocked: intercept if the client's group trusts the school CA (`inspect_groups`), so
  the block page can be shown; otherwise refuse the connection: the device could not show our page.
- destination in a `never_decrypt` category, or the group not inspected: pass it through untouched
  (`ignore_connection`: no certificate substitution, no body access);
- otherwise intercept, so path rules, SafeSearch and the block page work on each request.
Any error refuses the connection (fail closed), never passes it through.

In regular (explicit proxy) mode a CONNECT to a blocked name from a non-inspected group is answered
403 before any TLS; transparent mode has no CONNECT and relies on the ClientHello.
"""

from __future__ import annotations

import logging

from mitmproxy import connection, http, tls
from OpenSSL import SSL

from classgate.policies import Decision, Policy
from classgate.proxy.addons.request_filter import is_address
from classgate.proxy.context import FilterContext
from classgate.proxy.verdict import TLS_MODES, TlsMode, Verdict

log = logging.getLogger(__name__)


class TlsDecisionError(Exception):
    """No policy to decide a TLS connection with: it is refused."""


def _refusing_connection() -> SSL.Connection:
    """A server-side TLS connection with no certificate: the handshake fails with an alert.

    Handing mitmproxy this object (instead of its own, which would carry a certificate signed by
    the school CA) refuses the connection at the TLS layer whatever the order of addons, because
    mitmproxy's TlsConfig leaves an ssl_conn set by another addon alone.
    """
    context = SSL.Context(SSL.TLS_METHOD)
    conn = SSL.Connection(context)
    conn.set_accept_state()
    return conn


class TlsGate:
    def __init__(self, context: FilterContext) -> None:
        self.context = context
        self._refused: set[str] = set()  # client connection ids to refuse at tls_start_client
        self.counts: dict[TlsMode, int] = dict.fromkeys(TLS_MODES, 0)

    # -- regular mode: the CONNECT request ---------------------------------------------------
    def http_connect(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        try:
            policy = self._policy()
            client = flow.client_conn.peername[0] if flow.client_conn.peername else None
            if policy.group_of(client) in policy.tls.inspect_groups:
                return  # decided at the ClientHello, where a block page can still be shown
            at = self.context.clock.decision_time(policy.timezone)
            d = policy.decide_host(flow.request.host, client=client, at=at)
            if d.action == "block":
                self._count("refused", d, policy)
                # No host at INFO: default-level logs carry no destination (docs/metrics.md, "Logs").
                log.info("refused CONNECT group=%s category=%s rule=%s tier=%s", d.group, d.category, d.rule,
                         d.tier)
                log.debug("refused CONNECT host=%s", d.host)
                flow.response = http.Response.make(
                    403, b"Blocked by the school network filter.\n", {"Content-Type": "text/plain"}
                )
        except Exception as e:  # noqa: BLE001 - fail closed: any error refuses
            self.context.failsafe.failed("connect", e)
            self._count("refused", None, None)
            flow.response = http.Response.make(
                403, b"The school network filter could not check this address.\n", {"Content-Type": "text/plain"}
            )

    # -- the ClientHello ----------------------------------------------------------------------
    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        client_conn = data.context.client
        policy = None
        try:
            policy = self._policy()
            client = client_conn.peername[0] if client_conn.peername else None
            host = data.client_hello.sni
            if not host:
                # No SNI: judge the address the client connects to (a bare IP, usually).
                address = data.context.server.address
                host = address[0] if address else ""
            at = self.context.clock.decision_time(policy.timezone)
            d = policy.decide_host(host, client=client, at=at)
            # In regular mode the connection goes to the CONNECT target, whatever the SNI says. A
            # target that names another host than the SNI (domain fronting, or a bank's SNI sent
            # to a blocked server to earn a passthrough) is judged too, and never passed through
            # on the strength of the SNI's never_decrypt category.
            mismatch = False
            target = self._target_name(data, host)
            if target is not None:
                other = policy.decide_host(target, client=client, at=at)
                mismatch = other.host != d.host
                if mismatch and other.action == "block" and d.action != "block":
                    d = other
            inspect = d.group in policy.tls.inspect_groups
            if d.action == "block":
                # Intercept or refuse: either way, no early connection to the blocked server.
                data.establish_server_tls_first = False
                if inspect:
                    mode = "intercepted"
                else:
                    mode = "refused"
                    self._refused.add(client_conn.id)
                    log.info("refused TLS group=%s category=%s rule=%s tier=%s", d.group, d.category, d.rule,
                             d.tier)
                    log.debug("refused TLS host=%s", d.host or host)
            elif not inspect or (not mismatch and policy.tls.never_decrypt.intersection(d.categories)):
                mode = "passthrough"
                data.ignore_connection = True
            else:
                mode = "intercepted"
            self._count(mode, d, policy)
        except Exception as e:  # noqa: BLE001 - fail closed: any error refuses
            self.context.failsafe.failed("tls", e)
            data.ignore_connection = False
            data.establish_server_tls_first = False
            self._refused.add(client_conn.id)
            self._count("refused", None, policy)

    def tls_start_client(self, data: tls.TlsData) -> None:
        if data.context.client.id in self._refused:
            self._refused.discard(data.context.client.id)
            data.ssl_conn = _refusing_connection()

    def client_disconnected(self, client: connection.Client) -> None:
        self._refused.discard(client.id)

    # -- helpers ---------------------------------------------------------------------------------
    @staticmethod
    def _target_name(data: tls.ClientHelloData, sni_host: str) -> str | None:
        """The connection's target when it is a name other than the SNI (regular mode), else None.

        In transparent mode the target is the original destination address, judged through the SNI.
        """
        address = data.context.server.address
        if not address or not address[0]:
            return None
        target = str(address[0])
        if target.lower().rstrip(".") == sni_host.lower().rstrip(".") or is_address(target):
            return None
        return target

    def _policy(self) -> Policy:
        policy = self.context.holder.policy
        if policy is None:
            raise TlsDecisionError("no policy is loaded")
        return policy

    def _count(self, mode: TlsMode, decision: Decision | None, policy: Policy | None) -> None:
        self.counts[mode] += 1
        # Connections we never see inside are one visit each: their verdict is counted now, so
        # non-inspected groups do not vanish from the per-category figures. An intercepted connection's
        # requests are counted one by one when they finish.
        verdict = None
        if decision is not None and mode != "intercepted":
            verdict = Verdict.of(decision, policy_version=policy.version if policy is not None else None)
        self.context.verdicts.connection_decided(verdict, mode)
