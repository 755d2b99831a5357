"""One message from one client, before and after the resolver: admit it, read it, answer it, fit the answer.

Admission, in order (cheapest first, nothing parsed for a client that may not ask):
1. the client's rate (ratelimit.py): over it, dropped;
2. who may ask (access.py): outside the LAN, REFUSED (header and question only: never larger than the query,
   so even a spoofed source gains nothing);
3. reading the query (wire.py): FORMERR for what cannot be read, NOTIMP/REFUSED for what the gateway does not
   serve, silence for a response (QR set).
Then the resolver; any failure there is SERVFAIL, never a crash and never an unfiltered answer. The answer is
fitted to the transport: over UDP at most the client's EDNS size (512 without EDNS, 1232 at most), else an
empty answer with TC set so the client asks again over TCP.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mitmproxy.net.dns import response_codes

from classgate.proxy.dns.access import LanAccess
from classgate.proxy.dns.ratelimit import RateLimiter
from classgate.proxy.dns.resolver import GatewayResolver, NoPolicy, Pending
from classgate.proxy.dns.upstream import UpstreamError
from classgate.proxy.dns.wire import (
    TCP_MAX,
    Answer,
    Malformed,
    NotAQuery,
    Query,
    Unsupported,
    pack_error,
    pack_reply,
    parse_query,
)
from classgate.proxy.failsafe import FailSafe
from classgate.proxy.local_addresses import IpAddress

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PendingReply:
    """A reply that waits for the upstream (`await handler.finish(reply)`; nothing runs until then)."""

    lookup: Pending
    tcp: bool


class QueryHandler:
    def __init__(self, resolver: GatewayResolver, access: LanAccess, limiter: RateLimiter, failsafe: FailSafe) -> None:
        self.resolver = resolver
        self.access = access
        self.limiter = limiter
        self.failsafe = failsafe
        self.events = resolver.context.events

    def admit(self, data: bytes, client: IpAddress) -> Query | bytes | None:
        """A query to resolve, an answer to send at once, or None (drop it)."""
        if not self.limiter.allow(client):
            self.events.record_dns_failure("rate_limited")
            return None
        if not self.access.allows(client, self.resolver.context.holder.policy):
            self.events.record_dns_failure("not_lan")
            return _refused(data)
        try:
            return parse_query(data)
        except NotAQuery:
            self.events.record_dns_failure("malformed")
            return None
        except Malformed as e:
            self.events.record_dns_failure("malformed")
            log.debug("malformed DNS query: %s", e)
            if e.query_id is None:
                return None
            return pack_error(e.query_id, int.from_bytes(data[2:4], "big") if len(data) >= 4 else 0, e.question,
                              response_codes.FORMERR)
        except Unsupported as e:
            self.events.record_dns_failure("unsupported")
            return pack_error(e.query_id, e.flags, e.question, e.rcode)

    def respond(self, query: Query, client: IpAddress, local: IpAddress | None, *,
                tcp: bool) -> bytes | PendingReply:
        """The bytes to send back for an admitted query, at once when no upstream is needed, else what to
        `finish` (SERVFAIL when no answer can be had)."""
        try:
            started = self.resolver.start(query, client, local)
        except Exception as e:  # noqa: BLE001 - fail closed: a bug answers SERVFAIL, never unfiltered
            return self._failed(query, e)
        if isinstance(started, Answer):
            return pack_reply(query, started, TCP_MAX if tcp else query.udp_limit)
        return PendingReply(started, tcp)

    async def finish(self, pending: PendingReply) -> bytes:
        query = pending.lookup.query
        try:
            answer = await self.resolver.finish(pending.lookup)
        except Exception as e:  # noqa: BLE001 - fail closed, as above
            return self._failed(query, e)
        return pack_reply(query, answer, TCP_MAX if pending.tcp else query.udp_limit)

    async def answer(self, query: Query, client: IpAddress, local: IpAddress | None, *, tcp: bool) -> bytes:
        """`respond`, finished."""
        result = self.respond(query, client, local, tcp=tcp)
        return result if isinstance(result, bytes) else await self.finish(result)

    def _failed(self, query: Query, error: Exception) -> bytes:
        if isinstance(error, UpstreamError):
            self.events.record_dns_failure("upstream_failed")
            log.debug("DNS upstream failed: %s", error)
        else:
            self.events.record_dns_failure("error")
            if not isinstance(error, NoPolicy):
                self.failsafe.failed("request", error)
        return pack_error(query.id, query.flags, query.question, response_codes.SERVFAIL)


def _refused(data: bytes) -> bytes | None:
    """REFUSED with the question when it can be read, else the bare header: never longer than the query."""
    if len(data) < 4:
        return None
    try:
        query = parse_query(data)
        return pack_error(query.id, query.flags, query.question, response_codes.REFUSED)
    except (Malformed, Unsupported, NotAQuery):
        return pack_error(int.from_bytes(data[:2], "big"), int.from_bytes(data[2:4], "big"), None,
                          response_codes.REFUSED) if len(data) >= 12 and not data[2] & 0x80 else None
