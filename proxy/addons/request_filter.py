"""Decide every HTTP request (plain, or inside an intercepted TLS connection) on its full URL.

The decision is made in `requestheaders`, before the body is read or streamed upstream, and is
recorded in flow.metadata["classgate"] (see docs/architecture.md) for the metrics bridge.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from typing import Any

from mitmproxy import http

from proxy import clock
from proxy.blockpage import new_ref
from proxy.failsafe import FailSafe
from proxy.policy_holder import PolicyHolder
from proxy.responses import block_response

log = logging.getLogger(__name__)


class FilterError(Exception):
    """The filter cannot decide (no policy loaded...): the request is blocked."""


def is_ip_literal(host: str) -> bool:
    """True for an IPv4/IPv6 address (bracketed or not), False for a name."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def request_url(req: http.Request) -> str:
    """The URL the request asks for, naming the host by its Host header (or HTTP/2 authority).

    Built by hand: mitmproxy's `pretty_url` re-validates and IDNA-round-trips the host on every call,
    which cost more than the whole policy decision; the policy parses and canonicalises the URL itself.
    """
    authority = req.host_header or req.host
    if ":" in authority and not authority.startswith("[") and authority.count(":") > 1:
        authority = f"[{authority}]"  # a bare IPv6 target
    return f"{req.scheme}://{authority}{req.path}"


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
    if target and target != url_host and target not in out and not is_ip_literal(target):
        out.append(target)
    return out


class RequestFilter:
    def __init__(self, holder: PolicyHolder, failsafe: FailSafe) -> None:
        self.holder = holder
        self.failsafe = failsafe
        self.pinned = clock.pinned_setting()  # read once: the environment does not change

    def running(self) -> None:
        if self.pinned:
            log.warning("%s is set: the filter's clock is pinned (test-only setting)", clock.TEST_NOW_ENV)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        policy = None
        try:
            policy = self.holder.pin(flow)
            if policy is None:
                raise FilterError("no policy is loaded")
            client = flow.client_conn.peername[0] if flow.client_conn.peername else None
            at = clock.test_now(policy.timezone, self.pinned) if self.pinned else None
            started = time.perf_counter()
            url = request_url(flow.request)
            d = policy.decide(url, client=client, at=at)
            if d.action != "block":
                for host in other_hosts(flow, d.host):
                    other = policy.decide_host(host, client=client, at=at)
                    if other.action == "block":
                        d = other
                        break
            elapsed = time.perf_counter() - started
            blocked = d.action == "block"
            meta: dict[str, Any] = {
                "action": d.action,
                "rule": d.rule,
                "tier": d.tier,
                "group": d.group,
                "category": d.categories[0] if d.categories else "uncategorized",
                "categories": list(d.categories),
                "host": d.host,
                "decision_seconds": elapsed,
                "ref": new_ref() if blocked else None,
                "safesearch": None,
                "error": d.error is not None,
                "policy_version": policy.version,
            }
            flow.metadata["classgate"] = meta
            if not blocked:
                return
            log.info(
                # No host here: default-level logs carry no destination (privacy, docs/metrics.md);
                # the DEBUG line below has the URL for troubleshooting.
                "blocked ref=%s group=%s category=%s rule=%s tier=%s",
                meta["ref"], d.group, meta["category"], d.rule, d.tier,
            )
            log.debug("blocked ref=%s url=%s", meta["ref"], url)
            self._answer(flow, policy, meta["ref"], d.categories, d.rule, error=d.tier == "error")
        except Exception as e:  # noqa: BLE001 - fail closed: any error blocks
            self._fail(flow, policy, e)

    def _answer(self, flow, policy, ref, categories, rule, error=False) -> None:
        if flow.request.stream:
            # A streamed upload cannot be answered by us (mitmproxy forbids a response plus
            # streaming); cut the connection rather than let any of it through.
            flow.kill()
            return
        flow.response = block_response(flow, policy, ref=ref, categories=categories, rule=rule, error=error)

    def _fail(self, flow: http.HTTPFlow, policy: Any, error: Exception) -> None:
        ref = new_ref()
        self.failsafe.failed("request", error, ref)
        meta = flow.metadata.get("classgate") or {}
        meta.update(
            action="block",
            tier="error",
            error=True,
            ref=ref,
            decision_seconds=meta.get("decision_seconds", 0.0),
        )
        meta.setdefault("group", "default")
        meta.setdefault("category", "uncategorized")
        meta.setdefault("rule", None)
        meta.setdefault("host", None)
        meta.setdefault("safesearch", None)
        flow.metadata["classgate"] = meta
        try:
            self._answer(flow, policy, ref, (), None, error=True)
        except Exception:
            # Even the error page failed: kill the flow. Never let it through.
            log.exception("cannot answer a failed request; killing it")
            flow.kill()
