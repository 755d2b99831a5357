"""The gateway's resolver as one of our components: it serves from `running` and stops in `done`.

`build_gateway_dns` assembles the chain of classgate.proxy.dns (listener -> admission -> resolver -> cache ->
upstream) on the gateway's shared FilterContext, so the resolver decides with the very policy holder, clock and
name table the proxy's gates use. Its sockets are bound when it is built (a taken port stops `classgate run`
with a message, before mitmproxy starts); it answers only once mitmproxy runs, after the policy is loaded.
"""

from __future__ import annotations

import logging

from mitmproxy import ctx

from classgate.policies.canonical import canonical_host
from classgate.policies.errors import UrlError
from classgate.proxy.addons.ca_page import DEFAULT_HOST as DEFAULT_CA_HOST
from classgate.proxy.context import FilterContext
from classgate.proxy.dns.access import LanAccess
from classgate.proxy.dns.cache import AnswerCache
from classgate.proxy.dns.config import DnsConfig, check_upstreams, system_upstreams
from classgate.proxy.dns.listener import DnsListener, bind
from classgate.proxy.dns.ratelimit import RateLimiter
from classgate.proxy.dns.resolver import GatewayResolver
from classgate.proxy.dns.server import QueryHandler
from classgate.proxy.dns.upstream import Upstream

log = logging.getLogger(__name__)


class GatewayDns:
    """The DNS listener's life cycle inside mitmproxy's (the component's only hooks)."""

    def __init__(self, listener: DnsListener, resolver: GatewayResolver) -> None:
        self.listener = listener
        self.resolver = resolver

    def configure(self, updated: set[str]) -> None:
        # The CA page's name (CaPage declares the option): answered with the gateway's own address.
        if "classgate_ca_host" in updated:
            try:
                self.resolver.ca_host = canonical_host(str(ctx.options.classgate_ca_host))
            except UrlError:
                pass  # CaPage refuses the value (OptionsError), which rolls the change back

    async def running(self) -> None:
        await self.listener.start()
        upstreams = ", ".join(str(u) for u in self.resolver.upstream.servers)
        log.info("DNS listener on %s (upstream %s)", self.listener.address, upstreams)

    async def done(self) -> None:
        await self.listener.stop()


def build_gateway_dns(context: FilterContext, config: DnsConfig) -> GatewayDns:
    """The resolver on `config.listen`; raises DnsConfigError (a setting) or OSError (the port)."""
    upstreams = config.upstreams or system_upstreams()
    check_upstreams(config.listen, upstreams)
    resolver = GatewayResolver(context, Upstream(upstreams, timeout=config.timeout), AnswerCache(config.cache_entries),
                               ca_host=DEFAULT_CA_HOST)
    handler = QueryHandler(resolver, LanAccess(config.allow), RateLimiter(config.rate, config.burst), context.failsafe)
    return GatewayDns(DnsListener(bind(config.listen), handler), resolver)
