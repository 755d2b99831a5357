"""Decide every HTTP request (plain, or inside an intercepted TLS connection) on every place it reaches.

A request reaches more than its Host header names: the connection's target (the CONNECT authority, an
absolute-form target, the original destination in transparent mode), the TLS SNI, and an absolute-form
target sent inside a tunnel (nginx picks its virtual host from that, not from Host). The client chooses
each of them. Every one is decided on the full URL, and the request passes only if all are allowed.

An address among them that only the policy's default blocks (a policy that allows a list of sites and
blocks the rest) is the address of an allowed name in the usual case, a transparent connection's original
destination: it passes when the gateway resolves one of the request's allowed names to it, and not
otherwise (else an allowed Host header would carry a request to any server).

The decision is made in `requestheaders`, before the body is read or streamed upstream, and is recorded on
the flow as a `Verdict` (proxy/verdict.py) for the SafeSearch rewrite and the counter.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from dataclasses import replace

from mitmproxy import http

from classgate.policies import Decision, Policy
from classgate.policies.canonical import canonical_host, is_ip_literal
from classgate.policies.errors import UrlError
from classgate.policies.vocabulary import UNCATEGORIZED
from classgate.proxy.blockpage import new_ref
from classgate.proxy.context import FilterContext
from classgate.proxy.local_addresses import IpAddress, opened, plain_address
from classgate.proxy.responses import can_answer
from classgate.proxy.verdict import Verdict, record, verdict_of

log = logging.getLogger(__name__)

GATEWAY_RULE = "gateway-itself"  # the rule name a request to the gateway's own address is blocked by


# Tiers whose block of an address is no reason of its own: the default, and a teacher's lock ("only these
# sites", named by name); such an address passes when it is an address of the allowed name.
_BY_NAME_TIERS = frozenset({"default", "teacher"})


class FilterError(Exception):
    """The filter cannot decide (no policy loaded...): the request is blocked."""


def is_address(raw: str) -> bool:
    """True when a connection target as mitmproxy gives it (IPv6 without brackets) is an IP address."""
    try:
        return is_ip_literal(canonical_host(_bracketed(raw)))
    except UrlError:
        return False


def _bracketed(raw: str) -> str:
    """A bare IPv6 address (as mitmproxy gives targets) in brackets; a name, IPv4 or HOST:PORT as it is."""
    return f"[{raw}]" if raw.count(":") > 1 and not raw.startswith("[") else raw


def request_url(req: http.Request) -> str:
    """The URL the request asks for, naming the host by its Host header (or HTTP/2 authority).

    Built by hand: mitmproxy's `pretty_url` re-validates and IDNA-round-trips the host on every call,
    which cost more than the whole policy decision; the policy parses and canonicalises the URL itself.
    """
    return f"{req.scheme}://{_bracketed(req.host_header or req.host)}{req.path}"


def other_destinations(flow: http.HTTPFlow) -> list[str]:
    """Every other name or address this request reaches besides its Host header's, as the client gave them.

    The connection target, an absolute-form authority (inside a tunnel it can differ from both), the SNI.
    Duplicates of one another are removed here; the engine's canonical form removes the rest."""
    request = flow.request
    primary = (request.host_header or "").lower()
    out: list[str] = []
    for raw in (request.host, _authority_host(request), flow.client_conn.sni or ""):
        if raw and raw.lower() != primary and raw.lower() not in out:
            out.append(raw.lower())
    return out


def _authority_host(request: http.Request) -> str:
    """The host of an absolute-form request target or HTTP/2 :authority, or ""."""
    authority = request.data.authority.decode("ascii", "replace")
    if not authority:
        return ""
    if authority.startswith("["):
        return authority.partition("]")[0] + "]"
    return authority.rpartition(":")[0] if authority.count(":") == 1 else authority


class RequestFilter:
    def __init__(self, context: FilterContext) -> None:
        self.context = context

    def requestheaders(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        if flow.response or flow.error or not flow.live:
            return None
        policy = None
        try:
            policy = self.context.holder.pin(flow)
            if policy is None:
                raise FilterError("no policy is loaded")
            started = time.perf_counter()
            outcome = self._decide(flow, policy)
            if isinstance(outcome, _Unverified):
                return self._verify(flow, policy, outcome, started)
            self._act(flow, policy, outcome, started)
        except Exception as e:  # noqa: BLE001 - fail closed: any error blocks
            self._fail(flow, policy, e)
        return None

    def _decide(self, flow: http.HTTPFlow, policy: Policy) -> Decision | Verdict | _Unverified:
        """The verdict for every destination: a block, the allowing decision, or addresses still to check."""
        request = flow.request
        peer = flow.client_conn.peername
        client = peer[0] if peer else None
        at = self.context.clock.decision_time(policy.timezone)
        classes = self.context.classes
        main = classes.decide(policy, request_url(request), client, at)
        if main.action == "block":
            return main
        services = policy.document.local_services
        unverified: list[IpAddress] = []
        for raw in [main.host, *other_destinations(flow)]:
            address = plain_address(raw)
            if address is not None and self.context.local.is_local(address) and not opened(
                    services, address, request.port):
                return self._gateway_verdict(main, policy)
            if raw == main.host:
                continue
            d = classes.decide(policy, f"{request.scheme}://{_bracketed(raw)}{request.path}", client, at)
            if d.allowed:  # a warn on another destination is answered as such: its "continue" cannot work here
                continue
            if address is not None and d.tier in _BY_NAME_TIERS and not is_ip_literal(main.host):
                unverified.append(address)  # only the default blocks it: is it the allowed name's address?
                continue
            return d
        if unverified:
            return _Unverified(main, main.host, unverified)
        return main

    async def _verify(self, flow: http.HTTPFlow, policy: Policy, pending: _Unverified, started: float) -> None:
        try:
            for address in pending.addresses:
                if not await self.context.names.has_address(pending.name, address):
                    # Not where its name says: judged as the address it is (blocked by the default).
                    self._act(flow, policy, _address_verdict(pending.decision, policy), started)
                    return
            self._act(flow, policy, pending.decision, started)
        except Exception as e:  # noqa: BLE001 - fail closed: any error blocks
            self._fail(flow, policy, e)

    def _gateway_verdict(self, main: Decision, policy: Policy) -> Verdict:
        return Verdict(action="block", tier="gateway", group=main.group, category=UNCATEGORIZED,
                       rule=GATEWAY_RULE, policy_version=policy.version)

    def _act(self, flow: http.HTTPFlow, policy: Policy, outcome: Decision | Verdict, started: float) -> None:
        elapsed = time.perf_counter() - started
        blocked = outcome.action == "block"
        if isinstance(outcome, Verdict):
            verdict = replace(outcome, decision_seconds=elapsed, ref=new_ref())
        else:
            verdict = Verdict.of(outcome, policy_version=policy.version, seconds=elapsed,
                                 ref=new_ref() if blocked else None)
            if not blocked:
                # Warn-and-continue and quotas (proxy/warn.py): the gateway may answer the request itself.
                answer = self.context.student.judge(flow, policy, outcome, self.context.responder)
                if answer is not None:
                    record(flow, replace(verdict, action=answer.action, ref=answer.ref))
                    if answer.response is None:
                        flow.kill()  # an upload that cannot be answered (see _answer): never let it through
                    else:
                        flow.response = answer.response
                    return
                if outcome.action == "warn":
                    verdict = replace(verdict, action="allow")  # continued: passes as allowed (SafeSearch too)
        record(flow, verdict)
        if not blocked:
            return
        log.info(
            # No host here: default-level logs carry no destination (privacy, docs/metrics.md);
            # the DEBUG line below has the URL for troubleshooting.
            "blocked ref=%s group=%s category=%s rule=%s tier=%s",
            verdict.ref, verdict.group, verdict.category, verdict.rule, verdict.tier,
        )
        log.debug("blocked ref=%s url=%.300s", verdict.ref, request_url(flow.request))
        self._answer(flow, policy, verdict)

    def _answer(self, flow: http.HTTPFlow, policy: Policy | None, verdict: Verdict) -> None:
        if not can_answer(flow.request):
            # An upload that is (or may become) streamed cannot be answered by us: mitmproxy reads the
            # body before it sends an answer, and forbids an answer on a streamed request. Cut the
            # connection rather than read megabytes of a blocked upload or let any of it through.
            flow.kill()
            return
        assert verdict.ref is not None
        flow.response = self.context.responder.respond(
            flow, policy, ref=verdict.ref, categories=verdict.categories, rule=verdict.rule, error=verdict.error,
            gateway=verdict.tier == "gateway", host=verdict.host, group=verdict.group, tier=verdict.tier,
        )

    def _fail(self, flow: http.HTTPFlow, policy: Policy | None, error: Exception) -> None:
        ref = new_ref()
        self.context.failsafe.failed("request", error, ref)
        earlier = verdict_of(flow)
        verdict = earlier.failing(ref) if earlier is not None else Verdict.failed(
            ref=ref, policy_version=policy.version if policy is not None else None)
        record(flow, verdict)
        try:
            self._answer(flow, policy, verdict)
        except Exception:
            # Even the error page failed: kill the flow. Never let it through.
            log.exception("cannot answer a failed request; killing it")
            flow.kill()


class _Unverified:
    """Allowed on its names, but it also reaches addresses that only the default blocks: check them."""

    __slots__ = ("addresses", "decision", "name")

    def __init__(self, decision: Decision, name: str, addresses: list[IpAddress]) -> None:
        self.decision, self.name, self.addresses = decision, name, addresses


def _address_verdict(allowed: Decision, policy: Policy) -> Verdict:
    """The block of an address that is not its name's: the policy's default, which blocks it."""
    return Verdict(action="block", tier="default", group=allowed.group, category=UNCATEGORIZED,
                   policy_version=policy.version)

