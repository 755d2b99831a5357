"""Decide HTTPS before any interception, from the CONNECT target and the TLS ClientHello (SNI).

For each new TLS connection (policy `tls` section):
- destination blocked: intercept if the client's group trusts the school CA (`inspect_groups`), so
  the block page can be shown; otherwise refuse the connection: the device could not show our page.
- destination in a `never_decrypt` category, or the group not inspected: pass it through untouched
  (`ignore_connection`: no certificate substitution, no body access);
- otherwise intercept, so path rules, SafeSearch and the block page work on each request.
Any error refuses the connection (fail closed), never passes it through.

Encrypted Client Hello (RFC 9849): a ClientHello carrying the ECH extension (0xfe0d, outer form) whose SNI is
a known ECH front (`tls.ech_fronts`: cloudflare-ech.com and friends) hides its real destination behind a name
shared by millions of sites. Inspected groups get it intercepted with a school-CA certificate for the outer
name: the browser, which trusts that certificate, takes it as the server's refusal of ECH and retries without
(the RFC's secure fallback), and the real name is decided as usual. Other groups get it refused, unless the
policy says `tls.ech: allow` (then it is decided on the outer name like any SNI). GREASE ECH (the extension with
the real name in the SNI, which every Chrome sends) is decided on its SNI, as any ClientHello.

In regular (explicit proxy) mode a CONNECT to a blocked name from a non-inspected group is answered
403 before any TLS; transparent mode has no CONNECT and relies on the ClientHello.

Where the decision is taken: at the connection's layer decision (`next_layer`), from the ClientHello bytes
mitmproxy has buffered, once they are all there. A passthrough is then taken out of mitmproxy and relayed by
the gateway itself (`splice`: proxy/addons/passthrough_splice.py), or, where it cannot be, relayed by a plain
TCP layer with no TLS layers under it, as cheap as mitmproxy's own --ignore-hosts; any other outcome is remembered for the
TLS layer mitmproxy builds next, whose `tls_clienthello` applies it without deciding again. Where the early
decision cannot be taken (the hook order of another master, a ClientHello mitmproxy cannot parse, one larger
than `EARLY_HELLO_MAX_BYTES`), `tls_clienthello` decides as before: the early path only saves work.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Final

from mitmproxy import connection, http, tls
from mitmproxy.proxy import layer
from mitmproxy.proxy.layers.tcp import TCPLayer
from mitmproxy.proxy.layers.tls import parse_client_hello
from OpenSSL import SSL

from classgate.policies import Decision, Policy
from classgate.proxy.addons.early_layer import EarlyOutcome
from classgate.proxy.context import FilterContext
from classgate.proxy.local_addresses import IpAddress, opened, plain_address
from classgate.proxy.verdict import TLS_MODES, TlsMode, Verdict

log = logging.getLogger(__name__)

ECH_EXTENSION: Final = 0xFE0D  # encrypted_client_hello (RFC 9849 section 11.1)
_ECH_OUTER: Final = b"\x00"  # ECHClientHelloType outer: the form a ClientHello on the wire carries
# A ClientHello is a few hundred bytes to ~2 KB (post-quantum key shares); past this the early decision waits
# no longer and the TLS layer, which reads the rest, decides.
EARLY_HELLO_MAX_BYTES: Final = 32 * 1024


def hides_destination(hello: tls.ClientHello, fronts: frozenset[str]) -> bool:
    """True for real ECH: the extension in its outer form, and an SNI that is a shared ECH front."""
    sni = hello.sni
    if not sni or sni.lower().rstrip(".") not in fronts:
        return False
    return any(kind == ECH_EXTENSION and isinstance(body, bytes) and body[:1] == _ECH_OUTER
               for kind, body in hello.extensions)


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


# Takes a connection decided to be passed through out of mitmproxy (sets its layer): True, or False when it
# cannot (PassthroughSplice.take).
Splice = Callable[[layer.NextLayer], bool]


class TlsGate:
    def __init__(self, context: FilterContext, splice: Splice | None = None) -> None:
        self.context = context
        self.splice = splice
        self._refused: set[str] = set()  # client connection ids to refuse at tls_start_client
        # client connection id -> (SNI, no early server connection) of a decision taken at the layer decision,
        # which the TLS layer's tls_clienthello applies to its own ClientHelloData
        self._early: dict[str, tuple[str | None, bool]] = {}
        self.counts: dict[TlsMode, int] = dict.fromkeys(TLS_MODES, 0)
        self.unverified = 0  # passthroughs refused or intercepted because their destination is not their name's

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
            d = self.context.classes.decide_host(policy, flow.request.host, client, at)
            if not d.allowed:  # a warn too: this device cannot be shown the warn page
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

    # -- the ClientHello, at the layer decision (proxy/addons/early_layer.py) ------------------
    def early_layer(self, nextlayer: layer.NextLayer) -> EarlyOutcome | Awaitable[EarlyOutcome]:
        """Decide a TLS connection from the ClientHello bytes buffered before any TLS layer: a passthrough
        becomes a relay; any other outcome is remembered for the TLS layer's `tls_clienthello`."""
        buffered = nextlayer.data_client()
        try:
            hello = parse_client_hello(buffered)
        except ValueError:
            return EarlyOutcome.LATER  # the TLS layer reports the broken ClientHello, as without this path
        if hello is None:
            return EarlyOutcome.WAITING if len(buffered) < EARLY_HELLO_MAX_BYTES else EarlyOutcome.LATER
        # establish_server_tls_first=True marks "not forbidden": a decision that must not contact the server
        # (intercept-to-block, refuse) clears it, as it does on the TLS layer's data.
        data = tls.ClientHelloData(nextlayer.context, hello, establish_server_tls_first=True)
        pending = self._decide(data)
        if pending is not None:
            return self._take_early_after(nextlayer, data, pending)
        return self._take_early(nextlayer, data)

    def _take_early(self, nextlayer: layer.NextLayer, data: tls.ClientHelloData) -> EarlyOutcome:
        client = nextlayer.context.client
        if data.ignore_connection:
            # What mitmproxy's client TLS layer records of a ClientHello it passes through, then a relay.
            client.sni = data.client_hello.sni
            client.alpn_offers = data.client_hello.alpn_protocols
            if self.splice is None or not self.splice(nextlayer):
                nextlayer.layer = TCPLayer(nextlayer.context, ignore=True)
            return EarlyOutcome.RELAYED
        self._early[client.id] = (data.client_hello.sni, not data.establish_server_tls_first)
        return EarlyOutcome.LATER

    async def _take_early_after(self, nextlayer: layer.NextLayer, data: tls.ClientHelloData,
                                pending: Awaitable[None]) -> EarlyOutcome:
        await pending
        return self._take_early(nextlayer, data)

    # -- the ClientHello, in the TLS layer ---------------------------------------------------
    def tls_clienthello(self, data: tls.ClientHelloData) -> Awaitable[None] | None:
        early = self._early.pop(data.context.client.id, None)
        if early is not None and early[0] == data.client_hello.sni:
            # Decided at the layer decision on these same bytes (counted there): intercepted or refused.
            if early[1]:
                data.establish_server_tls_first = False
            return None
        return self._decide(data)

    def _decide(self, data: tls.ClientHelloData) -> Awaitable[None] | None:
        client_conn = data.context.client
        policy = None
        try:
            policy = self._policy()
            plan = self._plan(data, policy)
            if hides_destination(data.client_hello, policy.tls.ech_fronts):
                inspected = plan.decision.group in policy.tls.inspect_groups
                # Intercepted or refused: nothing to verify, no server to reach. Allowed: decided as any SNI.
                plan = (replace(plan, ech=True) if policy.tls.ech == "allow" and not inspected
                        else _Plan(plan.decision, target_name=None, ech=True))
            if plan.verify is not None:
                return self._verify_then_apply(data, policy, plan)
            self._apply(data, policy, plan)
        except Exception as e:  # noqa: BLE001 - fail closed: any error refuses
            self._fail(client_conn, data, e, policy)
        return None

    def _plan(self, data: tls.ClientHelloData, policy: Policy) -> _Plan:
        """What to do with this connection, from its SNI and its target (the CONNECT authority in regular
        mode, the original destination in transparent mode); both must be allowed."""
        client = data.context.client.peername[0] if data.context.client.peername else None
        at = self.context.clock.decision_time(policy.timezone)
        decide_host = self.context.classes.decide_host  # the policy and the teachers' class actions
        sni = data.client_hello.sni
        address = data.context.server.address
        target = str(address[0]) if address and address[0] else ""
        if not sni:
            # No SNI: judge the address the client connects to (a bare IP, usually).
            return _Plan(decide_host(policy, target, client, at), target_name=None)
        d = decide_host(policy, sni, client, at)
        if not target:
            return _Plan(d, target_name=None)
        target_address = plain_address(target)
        if target_address is not None and self.context.local.is_local(target_address) and not opened(
                policy.document.local_services, target_address, int(address[1]) if address else 443):
            return _Plan(d, target_name=None, gateway=True)
        other = decide_host(policy, target, client, at)
        if other.host == d.host:
            return _Plan(d, target_name=None)
        if target_address is None:
            # A CONNECT target that names another host than the SNI (domain fronting, or a bank's SNI
            # sent to a blocked server to earn a passthrough): judged too, and never a reason for a
            # never_decrypt passthrough.
            return _Plan(other if other.action == "block" and d.action != "block" else d, target_name=target)
        # A teacher's lock names sites by name: an address target is judged by its SNI, as for the default.
        if other.action == "block" and (other.tier not in ("default", "teacher") or d.action == "block"):
            return _Plan(other, target_name=None)  # the address itself is blocked (a listed IP)
        # An address target with a name in the SNI. Regular mode: a passthrough is pointed at the name as
        # the gateway resolves it, so the address the client chose does not matter. Transparent mode: the
        # connection goes to the original destination, which must be one of the name's addresses.
        transparent = data.context.client.proxy_mode.type_name == "transparent"
        return _Plan(d, target_name=None, verify=target_address if transparent else None,
                     repoint=not transparent)

    async def _verify_then_apply(self, data: tls.ClientHelloData, policy: Policy, plan: _Plan) -> None:
        try:
            sni = data.client_hello.sni or ""
            assert plan.verify is not None
            if not await self.context.names.has_address(sni, plan.verify):
                plan = _Plan(plan.decision, target_name=None, unverified=True, ech=plan.ech)
            self._apply(data, policy, plan)
        except Exception as e:  # noqa: BLE001 - fail closed: any error refuses
            self._fail(data.context.client, data, e, policy)

    def _apply(self, data: tls.ClientHelloData, policy: Policy, plan: _Plan) -> None:
        d = plan.decision
        inspect = d.group in policy.tls.inspect_groups
        mode: TlsMode
        if plan.ech and (inspect or policy.tls.ech != "allow"):
            # Real ECH behind a shared front: the destination is unknown. Intercepted (the browser retries
            # without ECH, and the real name is decided), or refused.
            mode = self._intercept_or_refuse(data, inspect)
            if mode == "refused":
                log.info("refused TLS with Encrypted Client Hello behind a shared front group=%s", d.group)
        elif not d.allowed or plan.gateway:  # warn: the warn page for inspected devices, refused for others
            # Intercept or refuse: either way, no early connection to the blocked server.
            mode = self._intercept_or_refuse(data, inspect)
            if mode == "refused":
                log.info("refused TLS group=%s category=%s rule=%s tier=%s", d.group, d.category, d.rule,
                         "gateway" if plan.gateway else d.tier)
                log.debug("refused TLS host=%s", d.host)
        elif plan.unverified:
            # Not where its name says (the original destination is no address of the SNI's name): a tunnel
            # to any server behind an allowed name. Inspected devices get it intercepted, so every request
            # inside is decided; others cannot be checked, so it is refused.
            self.unverified += 1
            mode = self._intercept_or_refuse(data, inspect)
            if mode == "refused":
                log.info("refused TLS whose destination is not its name's group=%s", d.group)
        elif not inspect or (plan.target_name is None and policy.tls.never_decrypt.intersection(d.categories)):
            if self._used_up(data, policy, d):
                # A quota rule's connection is counted at its start, the one moment seen: used up, not passed.
                d = d._replace(action="block")  # counted as the block it is
                mode = self._intercept_or_refuse(data, inspect)
            else:
                mode = "passthrough"
                data.ignore_connection = True
                if plan.repoint and data.client_hello.sni and data.context.server.address:
                    data.context.server.address = (data.client_hello.sni, data.context.server.address[1])
        else:
            mode = "intercepted"
        if plan.ech:
            self.context.events.record_tls_ech(mode)
        self._count(mode, d, policy)

    def _intercept_or_refuse(self, data: tls.ClientHelloData, inspect: bool) -> TlsMode:
        """Either way, no early connection to the server: intercepted for inspected groups, else refused."""
        data.establish_server_tls_first = False
        if inspect:
            return "intercepted"
        self._refused.add(data.context.client.id)
        return "refused"

    def _fail(self, client_conn: connection.Client, data: tls.ClientHelloData, error: Exception,
              policy: Policy | None) -> None:
        self.context.failsafe.failed("tls", error)
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
        self._early.pop(client.id, None)

    # -- helpers ---------------------------------------------------------------------------------
    def _used_up(self, data: tls.ClientHelloData, policy: Policy, d: Decision) -> bool:
        peer = data.context.client.peername
        return self.context.student.connection_used_up(policy, d, peer[0] if peer else None,
                                                       self.context.clock.now(policy.timezone))

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


@dataclass(frozen=True)
class _Plan:
    decision: Decision  # the deciding one among the SNI's and the target's
    target_name: str | None  # a CONNECT target naming another host than the SNI: never a never_decrypt pass
    gateway: bool = False  # the target is the gateway itself (and the policy does not open it)
    verify: IpAddress | None = None  # transparent mode: the original destination must be the SNI name's
    unverified: bool = False  # ... and it is not
    repoint: bool = False  # regular mode: a passthrough connects to the SNI name, not the client's address
    ech: bool = False  # real Encrypted Client Hello behind a shared front: the SNI is not the destination
