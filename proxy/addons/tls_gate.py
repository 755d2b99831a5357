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
from typing import Any

from mitmproxy import http, tls
from OpenSSL import SSL

from proxy import clock
from proxy.addons.request_filter import is_ip_literal
from proxy.failsafe import FailSafe
from proxy.policy_holder import PolicyHolder

log = logging.getLogger(__name__)

MODES = ("intercepted", "passthrough", "refused")


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
    def __init__(self, holder: PolicyHolder, failsafe: FailSafe, metrics: Any = None) -> None:
        self.holder = holder
        self.failsafe = failsafe
        self.metrics = metrics
        self._refused: set[str] = set()  # client connection ids to refuse at tls_start_client
        self.counts = dict.fromkeys(MODES, 0)
        self.pinned = clock.pinned_setting()

    # -- regular mode: the CONNECT request ---------------------------------------------------
    def http_connect(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        try:
            policy = self._policy()
            client = flow.client_conn.peername[0] if flow.client_conn.peername else None
            if policy.group_of(client) in policy.tls.inspect_groups:
                return  # decided at the ClientHello, where a block page can still be shown
            d = policy.decide_host(flow.request.host, client=client, at=self._at(policy))
            if d.action == "block":
                self._count("refused", d)
                # No host at INFO: default-level logs carry no destination (docs/metrics.md, "Logs").
                log.info("refused CONNECT group=%s category=%s rule=%s tier=%s", d.group,
                         d.categories[0] if d.categories else "uncategorized", d.rule, d.tier)
                log.debug("refused CONNECT host=%s", d.host)
                flow.response = http.Response.make(
                    403, b"Blocked by the school network filter.\n", {"Content-Type": "text/plain"}
                )
        except Exception as e:  # noqa: BLE001 - fail closed: any error refuses
            self.failsafe.failed("connect", e)
            self._count("refused", None)
            flow.response = http.Response.make(
                403, b"The school network filter could not check this address.\n", {"Content-Type": "text/plain"}
            )

    # -- the ClientHello ----------------------------------------------------------------------
    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        client_conn = data.context.client
        try:
            policy = self._policy()
            client = client_conn.peername[0] if client_conn.peername else None
            host = data.client_hello.sni
            if not host:
                # No SNI: judge the address the client connects to (a bare IP, usually).
                address = data.context.server.address
                host = address[0] if address else ""
            at = self._at(policy)
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
                    log.info("refused TLS group=%s category=%s rule=%s tier=%s", d.group,
                             d.categories[0] if d.categories else "uncategorized", d.rule, d.tier)
                    log.debug("refused TLS host=%s", d.host or host)
            elif not inspect or (not mismatch and policy.tls.never_decrypt.intersection(d.categories)):
                mode = "passthrough"
                data.ignore_connection = True
            else:
                mode = "intercepted"
            self._count(mode, d)
        except Exception as e:  # noqa: BLE001 - fail closed: any error refuses
            self.failsafe.failed("tls", e)
            data.ignore_connection = False
            data.establish_server_tls_first = False
            self._refused.add(client_conn.id)
            self._count("refused", None)

    def tls_start_client(self, data: tls.TlsData) -> None:
        if data.context.client.id in self._refused:
            self._refused.discard(data.context.client.id)
            data.ssl_conn = _refusing_connection()

    def client_disconnected(self, client: Any) -> None:
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
        if target.lower().rstrip(".") == sni_host.lower().rstrip(".") or is_ip_literal(target):
            return None
        return target

    def _at(self, policy: Any) -> Any:
        return clock.test_now(policy.timezone, self.pinned) if self.pinned else None

    def _policy(self) -> Any:
        policy = self.holder.policy
        if policy is None:
            raise TlsDecisionError("no policy is loaded")
        return policy

    def _count(self, mode: str, decision: Any) -> None:
        self.counts[mode] += 1
        if self.metrics is None:
            return
        try:
            self.metrics.record_tls(mode)
            if mode != "intercepted" and decision is not None:
                # Connections we never see inside are still one visit each: count them, so
                # non-inspected groups do not vanish from the per-category figures.
                category = decision.categories[0] if decision.categories else "uncategorized"
                self.metrics.record_request(category, decision.group, decision.action, decision.tier, 0, 0)
        except Exception:
            log.debug("metrics failed in the TLS gate", exc_info=True)
