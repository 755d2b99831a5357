"""The classgate components, in the order mitmproxy must run them (see `components`)."""

from __future__ import annotations

from classgate.proxy.addons.ca_page import CaPage
from classgate.proxy.addons.chain import Classgate
from classgate.proxy.addons.device_limit import DEFAULT_DEVICE_CONNECTIONS, DeviceConnectionLimit
from classgate.proxy.addons.gateway_dns import GatewayDns
from classgate.proxy.addons.passthrough_splice import PassthroughSplice
from classgate.proxy.addons.policy_source import PolicySource
from classgate.proxy.addons.privacy_log import PrivacyLog
from classgate.proxy.addons.request_filter import RequestFilter
from classgate.proxy.addons.request_syntax_gate import RequestSyntaxGate
from classgate.proxy.addons.safesearch_rewrite import SafeSearchRewrite
from classgate.proxy.addons.socket_closer import SocketCloser
from classgate.proxy.addons.tcp_gate import TcpGate
from classgate.proxy.addons.tls_gate import TlsGate
from classgate.proxy.addons.upstream_guard import UpstreamGuard
from classgate.proxy.addons.usage_metrics import UsageMetrics
from classgate.proxy.context import FilterContext


def default_addons(context: FilterContext, counter: UsageMetrics | None = None,
                   dns: GatewayDns | None = None,
                   device_connections: int = DEFAULT_DEVICE_CONNECTIONS) -> list[Classgate]:
    """The classgate addon for mitmproxy: our components, in order, behind one addon (see chain.py).

    `counter` is the component that counts (it should also be `context.verdicts`); None: no metrics.
    `dns`: the gateway's resolver (classgate.proxy.addons.gateway_dns), when `classgate run --dns` asks for it.
    `device_connections`: how many connections one device may hold open to this process (0: no limit)."""
    return [Classgate(components(context, counter, dns, device_connections), context.failsafe)]


def components(context: FilterContext, counter: UsageMetrics | None = None,
               dns: GatewayDns | None = None,
               device_connections: int = DEFAULT_DEVICE_CONNECTIONS) -> list[object]:
    """Our components, in order: each hook runs on them in list order."""
    limit = DeviceConnectionLimit(device_connections, context.events)
    guard = UpstreamGuard(context, context.local, context.names)
    splice = PassthroughSplice(guard, limit, context.failsafe)
    addons: list[object] = [
        # Before anything logs: client addresses stay out of INFO-level logs.
        PrivacyLog(),
        # First to see a connection: one device's connections past its limit are closed before anything else.
        limit,
        # First to decide: loads the policy from the options before anything decides, watches its files.
        PolicySource(context.holder),
    ]
    if dns is not None:
        # After the policy source (its `running` comes first, so the policy is in force before the first
        # query is answered); it shares the context, and with it the name table the TLS gate checks against.
        addons.append(dns)
    addons += [
        # Before any component reads a request: malformed HTTP is refused (400), never decided.
        RequestSyntaxGate(context),
        # Before the filter: the CA page must stay reachable for devices still without the CA,
        # even under a block-by-default policy.
        CaPage(),
        # CONNECT and ClientHello: pass through, refuse or intercept, before any TLS is spoken; a passthrough
        # is relayed outside mitmproxy where it can be (the splice, below).
        TlsGate(context, splice.take),
        # A tunnel that carries neither TLS nor HTTP: its target is decided when the stream starts.
        TcpGate(context),
        # Every HTTP request, on its full URL; answers blocked ones with the block page.
        RequestFilter(context),
        # After the filter: rewrites only requests it allowed, under the same policy.
        SafeSearchRewrite(context),
        # After the gates (which may refuse a connection first): every upstream connection is resolved by
        # the gateway, refused if it reaches the gateway itself, and pinned to the address checked.
        guard,
        # Relays the passthroughs taken out of mitmproxy (through the guard's checks); closes them at shutdown.
        splice,
        # When a connection is gone: closes the socket mitmproxy may have left open (Python 3.12+).
        SocketCloser(),
    ]
    if counter is not None:
        # Last: counts what the others decided (the verdicts on finished flows).
        addons.append(counter)
    return addons


__all__ = [
    "CaPage", "Classgate", "DeviceConnectionLimit", "GatewayDns", "PassthroughSplice", "PolicySource", "PrivacyLog", "RequestFilter", "RequestSyntaxGate", "SafeSearchRewrite",
    "SocketCloser", "TcpGate",
    "TlsGate", "UpstreamGuard", "UsageMetrics",
    "components", "default_addons",
]
