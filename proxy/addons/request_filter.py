"""Decide every HTTP request (plain, or inside an intercepted TLS connection) on its full URL.

The decision is made in `requestheaders`, before the body is read or streamed upstream, and is
recorded on the flow as a `Verdict` (proxy/verdict.py) for the SafeSearch rewrite and the counter.
"""

from __future__ import annotations

import logging
import time

from mitmproxy import http

from classgate.policies import Decision, Policy
from classgate.policies.canonical import canonical_host, is_ip_literal
from classgate.policies.errors import UrlError
from classgate.proxy.blockpage import new_ref
from classgate.proxy.context import FilterContext
from classgate.proxy.verdict import Verdict, record, verdict_of

log = logging.getLogger(__name__)


class FilterError(Exception):
    """The filter cannot decide (no policy loaded...): the request is blocked."""


def request_url(req: http.Request) -> str:
    """The URL the request asks for, naming the host by its Host header (or HTTP/2 authority).

    Built by hand: mitmproxy's `pretty_url` re-validates and IDNA-round-trips the host on every call,
    which cost more than the whole policy decision; the policy parses and canonicalises the URL itself.
    """
    authority = req.host_header or req.host
    if ":" in authority and not authority.startswith("[") and authority.count(":") > 1:
        authority = f"[{authority}]"  # a bare IPv6 target
    return f"{req.scheme}://{authority}{req.path}"


def is_address(raw: str) -> bool:
    """True when a connection target as mitmproxy gives it (IPv6 without brackets) is an IP address."""
    try:
        return is_ip_literal(canonical_host(f"[{raw}]" if ":" in raw and not raw.startswith("[") else raw))
    except UrlError:
        return False


def other_hosts(flow: http.HTTPFlow, url_host: str) -> list[str]:
    """Names this request also goes to, besides its URL's (canonical) host, that must be allowed too.

    - the TLS SNI when it differs from the Host header (domain fronting, or a connection
      intercepted only to show a block page for its SNI);
    - the connection target when it is a name that differs from the Host header (an absolute-form
      request for one host carrying another's Host header is sent to the first). A target that is
      an IP address is normal in transparent mode and is judged through the Host header.
    """
    out = []
    sni = flow.client_conn.sni
    if sni and sni.lower().rstrip(".") != url_host:
        out.append(sni)
    target = flow.request.host.lower().rstrip(".")
    if target and target != url_host and target not in out and not is_address(target):
        out.append(target)
    return out


class RequestFilter:
    def __init__(self, context: FilterContext) -> None:
        self.context = context

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        policy = None
        try:
            policy = self.context.holder.pin(flow)
            if policy is None:
                raise FilterError("no policy is loaded")
            started = time.perf_counter()
            d = self._decide(flow, policy)
            blocked = d.action == "block"
            verdict = Verdict.of(d, policy_version=policy.version, seconds=time.perf_counter() - started,
                                 ref=new_ref() if blocked else None)
            record(flow, verdict)
            if not blocked:
                return
            log.info(
                # No host here: default-level logs carry no destination (privacy, docs/metrics.md);
                # the DEBUG line below has the URL for troubleshooting.
                "blocked ref=%s group=%s category=%s rule=%s tier=%s",
                verdict.ref, d.group, verdict.category, d.rule, d.tier,
            )
            log.debug("blocked ref=%s url=%s", verdict.ref, d.url)
            self._answer(flow, policy, verdict)
        except Exception as e:  # noqa: BLE001 - fail closed: any error blocks
            self._fail(flow, policy, e)

    def _decide(self, flow: http.HTTPFlow, policy: Policy) -> Decision:
        peer = flow.client_conn.peername
        client = peer[0] if peer else None
        at = self.context.clock.decision_time(policy.timezone)
        d = policy.decide(request_url(flow.request), client=client, at=at)
        if d.action != "block":
            for host in other_hosts(flow, d.host):
                other = policy.decide_host(host, client=client, at=at)
                if other.action == "block":
                    return other
        return d

    def _answer(self, flow: http.HTTPFlow, policy: Policy | None, verdict: Verdict) -> None:
        if flow.request.stream:
            # A streamed upload cannot be answered by us (mitmproxy forbids a response plus
            # streaming); cut the connection rather than let any of it through.
            flow.kill()
            return
        assert verdict.ref is not None
        flow.response = self.context.responder.respond(
            flow, policy, ref=verdict.ref, categories=verdict.categories, rule=verdict.rule, error=verdict.error
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
