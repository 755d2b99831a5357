"""The resolver chain for one readable query from an admitted client: decide, look up, answer, learn.

1. blocking: the policy's plan for the name (blocking.py);
2. the block answer (the gateway's own address, or NXDOMAIN: the policy's `dns.block_answer`), NXDOMAIN for
   the canary and Private Relay, or a lookup: the name itself, or for SafeSearch the engine's safe host, whose
   answer is returned behind a CNAME from the name asked;
3. lookups go to the cache, then the upstream (one query per question in flight, however many clients ask);
   every upstream answer loses its `ech` parameters before it is cached (ech_strip.py);
4. the A/AAAA answers given are learnt by the gateway's name table (`FilterContext.names`), so the TLS gate's
   transparent-mode check (a passthrough's destination must be one of its SNI name's addresses) holds the
   device to what the gateway itself told it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass
from typing import Final

from mitmproxy.dns import ResourceRecord
from mitmproxy.net.dns import domain_names, response_codes, types

from classgate.policies import Policy
from classgate.proxy.context import FilterContext
from classgate.proxy.dns.blocking import plan_query
from classgate.proxy.dns.cache import AnswerCache, CacheKey, cache_key
from classgate.proxy.dns.ech_strip import strip_ech
from classgate.proxy.dns.upstream import Upstream
from classgate.proxy.dns.wire import CD, CLASS_IN, Answer, Query
from classgate.proxy.local_addresses import IpAddress

log = logging.getLogger(__name__)

# Block answers and the SafeSearch CNAME are short-lived: when a schedule ends (or the policy changes), a
# device asks again within a minute and gets the new answer.
BLOCK_TTL: Final = 60
SAFESEARCH_CNAME_TTL: Final = 300


class NoPolicy(Exception):
    """No policy is loaded: every query fails (SERVFAIL), none is answered unfiltered."""


@dataclass(frozen=True, slots=True)
class Pending:
    """An answer that needs the upstream: `await resolver.finish(pending)` (nothing runs until then)."""

    query: Query
    question: bytes  # what to ask: the query's own question, or the SafeSearch target's
    cname_target: str | None = None  # SafeSearch: the answer goes behind a CNAME to this host


class GatewayResolver:
    def __init__(self, context: FilterContext, upstream: Upstream, cache: AnswerCache,
                 ca_host: str = "") -> None:
        self.context = context
        self.upstream = upstream
        self.cache = cache
        self.ca_host = ca_host  # answered with the gateway's own address, where the proxy serves the CA page
        self._in_flight: dict[CacheKey, asyncio.Future[Answer]] = {}

    def policy(self) -> Policy:
        policy = self.context.holder.policy
        if policy is None:
            raise NoPolicy("no policy is loaded")
        return policy

    async def resolve(self, query: Query, client: IpAddress, local: IpAddress | None) -> Answer:
        """The answer for `query`; raises UpstreamError (no upstream answered) or NoPolicy."""
        result = self.start(query, client, local)
        return result if isinstance(result, Answer) else await self.finish(result)

    def start(self, query: Query, client: IpAddress, local: IpAddress | None) -> Answer | Pending:
        """The answer at once when no upstream is needed (a rule, a block, the cache: most queries), else the
        lookup to `finish`. Raises NoPolicy. One event-loop task per query would cost more than the answer."""
        policy = self.policy()
        events = self.context.events
        plan = plan_query(policy, query.name, str(client), self.context.clock.decision_time(policy.timezone),
                          self.ca_host, decide_host=self.context.classes.decide_host)
        if plan.special is not None:
            events.record_dns_special(plan.special)
        if plan.kind == "nxdomain":
            events.record_dns_query(plan.category, plan.group, "block")
            return Answer(response_codes.NXDOMAIN)
        if plan.kind == "block":
            events.record_dns_query(plan.category, plan.group, "block")
            log.debug("DNS block group=%s category=%s name=%s", plan.group, plan.category, query.name)
            return self._block_answer(policy, query, local)
        events.record_dns_query(plan.category, plan.group, "allow")
        if plan.kind == "gateway":
            return self._gateway_address(query, local)
        do, cd = query.do, bool(query.flags & CD)
        if plan.kind == "safesearch":
            assert plan.target is not None
            target = plan.target
            question = domain_names.pack(target) + query.qtype.to_bytes(2, "big") + CLASS_IN.to_bytes(2, "big")
            cached = self._cached(question, do=do, cd=cd)
            if cached is not None:
                return self._learnt(query, _behind_cname(query.name, target, cached))
            return Pending(query, question, target)
        cached = self._cached(query.question, do=do, cd=cd)
        if cached is not None:
            return self._learnt(query, cached)
        return Pending(query, query.question)

    async def finish(self, pending: Pending) -> Answer:
        """The answer `start` could not give at once; raises UpstreamError."""
        query, target = pending.query, pending.cname_target
        answer = await self.lookup(pending.question, do=query.do, cd=bool(query.flags & CD))
        return self._learnt(query, _behind_cname(query.name, target, answer) if target else answer)

    def _block_answer(self, policy: Policy, query: Query, local: IpAddress | None) -> Answer:
        if policy.document.dns.block_answer == "nxdomain":
            return Answer(response_codes.NXDOMAIN)
        return self._gateway_address(query, local)

    def _gateway_address(self, query: Query, local: IpAddress | None) -> Answer:
        """The address the query came to (the gateway's own, on the client's network); NXDOMAIN if unknown."""
        if local is None or local.is_unspecified:
            return Answer(response_codes.NXDOMAIN)
        if query.qtype == types.A and local.version == 4:
            return Answer(response_codes.NOERROR, [ResourceRecord.A(query.name, local, ttl=BLOCK_TTL)])
        if query.qtype == types.AAAA and isinstance(local, ipaddress.IPv6Address):
            return Answer(response_codes.NOERROR, [ResourceRecord.AAAA(query.name, local, ttl=BLOCK_TTL)])
        return Answer(response_codes.NOERROR)  # no data of this type: the device uses the address it got

    def _cached(self, question: bytes, *, do: bool, cd: bool) -> Answer | None:
        cached = self.cache.get(cache_key(question, do=do, cd=cd))
        if cached is not None:
            self.context.events.record_dns_cache("hit")
        return cached

    async def lookup(self, question: bytes, *, do: bool, cd: bool) -> Answer:
        """The answer to `question` from the upstream (once per question in flight), cached for its TTL.
        (`start` looked in the cache first.)"""
        key = cache_key(question, do=do, cd=cd)
        events = self.context.events
        events.record_dns_cache("miss")
        pending = self._in_flight.get(key)
        if pending is not None:
            return _copy(await asyncio.shield(pending))
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            answer = await self.upstream.exchange(question, do=do, cd=cd)
            stripped = strip_ech(answer)
            if stripped.https:
                events.record_dns_ech_stripped("https", stripped.https)
            if stripped.svcb:
                events.record_dns_ech_stripped("svcb", stripped.svcb)
            self.cache.put(key, answer)
            future.set_result(answer)
            return _copy(answer)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as e:
            future.set_exception(e)
            future.exception()  # retrieved: a question nobody else waited for must not log "never retrieved"
            raise
        finally:
            del self._in_flight[key]

    def _learnt(self, query: Query, answer: Answer) -> Answer:
        """`answer`, after the gateway's name table learnt its addresses for the name asked (A/AAAA)."""
        if query.qtype not in (types.A, types.AAAA) or answer.rcode != response_codes.NOERROR or not query.name:
            return answer
        addresses = tuple(ipaddress.ip_address(rr.data) for rr in answer.answers
                          if rr.type in (types.A, types.AAAA) and len(rr.data) in (4, 16))
        if addresses:
            ttl = min(rr.ttl for rr in answer.answers if rr.type in (types.A, types.AAAA))
            self.context.names.learn(query.name, addresses, float(ttl))
        return answer


def _behind_cname(name: str, target: str, found: Answer) -> Answer:
    """SafeSearch: `name` is an alias of the engine's safe host `target`, whose own answer follows."""
    cname = ResourceRecord.CNAME(name, target, ttl=min([SAFESEARCH_CNAME_TTL, *(rr.ttl for rr in found.answers)]))
    # Signatures over the target's records say nothing about the alias: not authenticated.
    return Answer(found.rcode, [cname, *found.answers], list(found.authorities), [], authenticated=False)


def _copy(answer: Answer) -> Answer:
    """A copy whose lists a caller may change (the records themselves are never changed after parsing)."""
    return Answer(answer.rcode, list(answer.answers), list(answer.authorities), list(answer.additionals),
                  answer.authenticated)
