"""The classgate addons, in the order mitmproxy must run them (see default_addons)."""

from __future__ import annotations

from typing import Any

from proxy.addons.ca_page import CaPage
from proxy.addons.chain import Classgate
from proxy.addons.policy_source import PolicySource
from proxy.addons.privacy_log import PrivacyLog
from proxy.addons.request_filter import RequestFilter
from proxy.addons.safesearch import SafeSearch
from proxy.addons.tcp_gate import TcpGate
from proxy.addons.tls_gate import TlsGate
from proxy.addons.usage_metrics import UsageMetrics
from proxy.failsafe import FailSafe
from proxy.policy_holder import PolicyHolder


def default_addons(holder: PolicyHolder, metrics: Any = None) -> list[Any]:
    """The classgate addon for mitmproxy: our components, in order, behind one addon (see chain.py)."""
    failsafe = FailSafe(metrics)
    return [Classgate(components(holder, metrics, failsafe), failsafe)]


def components(holder: PolicyHolder, metrics: Any, failsafe: FailSafe) -> list[Any]:
    """Our components, in order: each hook runs on them in list order."""
    addons: list[Any] = [
        # Before anything logs: client addresses stay out of INFO-level logs.
        PrivacyLog(),
        # First: loads the policy from the options before anything decides, watches its files.
        PolicySource(holder),
        # Before the filter: the CA page must stay reachable for devices still without the CA,
        # even under a block-by-default policy.
        CaPage(),
        # CONNECT and ClientHello: pass through, refuse or intercept, before any TLS is spoken.
        TlsGate(holder, failsafe, metrics),
        # A tunnel that carries neither TLS nor HTTP: its target is decided when the stream starts.
        TcpGate(holder, failsafe, metrics),
        # Every HTTP request, on its full URL; answers blocked ones with the block page.
        RequestFilter(holder, failsafe),
        # After the filter: rewrites only requests it allowed, under the same policy.
        SafeSearch(holder, failsafe),
    ]
    if metrics is not None:
        # Last: counts what the others decided, from flow.metadata["classgate"].
        addons.append(UsageMetrics(metrics))
    return addons


__all__ = [
    "CaPage", "Classgate", "PolicySource", "PrivacyLog", "RequestFilter", "SafeSearch", "TcpGate", "TlsGate",
    "UsageMetrics",
    "components", "default_addons",
]
