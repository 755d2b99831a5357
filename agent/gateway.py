"""The gateway, assembled in one place from one typed `GatewayConfig`.

Both ways of running classgate go through `build_gateway`: `classgate run` (agent/commands/run.py) and
`mitmdump -s .../agent/mitmdump_script.py`. The order of the steps below matters and is commented where
it does; the order of the components inside the proxy is proxy/addons/__init__.py's.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from classgate.agent.sync.loop import PollSettings
from classgate.metrics import Metrics, MetricsServer
from classgate.metrics import server as metrics_server
from classgate.policies import Policy
from classgate.proxy.addons import default_addons
from classgate.proxy.addons.device_limit import DEFAULT_DEVICE_CONNECTIONS
from classgate.proxy.addons.gateway_dns import GatewayDns, build_gateway_dns
from classgate.proxy.addons.metrics_endpoint import MetricsEndpoint
from classgate.proxy.addons.policy_source import DEFAULT_RELOAD_INTERVAL_MS
from classgate.proxy.addons.usage_metrics import UsageMetrics
from classgate.proxy.address import Address
from classgate.proxy.ca import SchoolCa, ensure_ca
from classgate.proxy.class_watch import ClassTier
from classgate.proxy.clock import REAL_CLOCK, Clock
from classgate.proxy.context import FilterContext
from classgate.proxy.dns.config import DnsConfig, DnsConfigError
from classgate.proxy.events import NoEvents
from classgate.proxy.failsafe import FailSafe
from classgate.proxy.last_good import LastGood
from classgate.proxy.metric_labels import gateway_metrics
from classgate.proxy.name_addresses import NameAddresses
from classgate.proxy.policy_holder import PolicyHolder, PolicySource
from classgate.proxy.verdict import NoSink
from classgate.proxy.warn import StudentSide
from classgate.proxy.warn_token import StudentKeyError

log = logging.getLogger(__name__)

ProxyMode = Literal["regular", "transparent"]
DEFAULT_LISTEN = Address("127.0.0.1", 8080)
DEFAULT_METRICS = Address("127.0.0.1", 9741)
# Uploads and downloads above this are streamed instead of held in memory. The filter decides on
# the request headers, before any body moves, so streaming never lets a blocked body through.
STREAM_LARGE_BODIES = "4m"


class GatewayError(Exception):
    """The gateway cannot be assembled (a port taken, a CA that cannot be read...): says what to fix."""


@dataclass(frozen=True)
class SyncSettings:
    url: str
    trust_root: Path
    poll: PollSettings = field(default_factory=PollSettings)
    report_to: str | None = None


@dataclass(frozen=True)
class GatewayConfig:
    """Everything a gateway is started with. `policy` None: the mitmdump script, whose policy comes from
    the `classgate_policy` option on mitmdump's command line."""

    policy: Path | None
    overlay: Path | None = None
    state_dir: Path = Path(".classgate")
    ca_name: str | None = None  # the school's name in the CA's common name, when the CA is created
    listen: Address = DEFAULT_LISTEN
    mode: ProxyMode = "regular"
    metrics: Address | None = DEFAULT_METRICS
    # Count every request for metrics. Off only when nothing could read the counts (no metrics endpoint):
    # `classgate run --metrics off`, and the benchmark of what counting costs.
    count_usage: bool = True
    sync: SyncSettings | None = None
    dns: DnsConfig | None = None  # the gateway's own resolver (classgate run --dns); None: off
    clock: Clock = REAL_CLOCK
    reload_interval_ms: int = DEFAULT_RELOAD_INTERVAL_MS
    verbose: bool = False
    mitmproxy_options: tuple[str, ...] = ()  # OPTION=VALUE, passed through as given (advanced)
    # Connections one device may hold open to this process at once (a worker: its share); 0: no limit.
    device_connections: int = DEFAULT_DEVICE_CONNECTIONS


@dataclass
class Gateway:
    """What `build_gateway` made: the addons for a mitmproxy master and the options to start it with."""

    config: GatewayConfig
    metrics: Metrics
    holder: PolicyHolder
    addons: list[object]
    ca: SchoolCa | None = None
    metrics_server: MetricsServer | None = None
    dns: GatewayDns | None = None

    @property
    def policy(self) -> Policy | None:
        return self.holder.policy

    def mitmproxy_options(self) -> dict[str, object]:
        """The mitmproxy options `classgate run` sets (the mitmdump script leaves them to the command line)."""
        c = self.config
        options: dict[str, object] = {
            # Connect upstream only when a request needs it: a blocked destination is never
            # contacted, and the block page for a blocked HTTPS site needs no upstream certificate.
            "connection_strategy": "lazy",
            "stream_large_bodies": STREAM_LARGE_BODIES,
            "termlog_verbosity": "debug" if c.verbose else "info",
            "listen_host": c.listen.host,
            "listen_port": c.listen.port,
            "mode": [c.mode],
            "classgate_policy": str(self.holder.policy_path or ""),
            "classgate_overlay": str(c.overlay or ""),
            "classgate_state_dir": str(c.state_dir),
            "classgate_reload_interval_ms": c.reload_interval_ms,
        }
        if self.ca is not None:
            options["confdir"] = str(self.ca.directory)
        return options

    def close(self) -> None:
        if self.metrics_server is not None:
            self.metrics_server.close()
            self.metrics_server = None
        if self.dns is not None:
            self.dns.listener.sockets.close()  # closed already when mitmproxy ran (done); harmless again
            self.dns = None


def build_gateway(config: GatewayConfig, names: NameAddresses | None = None) -> Gateway:
    """Assemble the gateway; with a policy, load it now (raises PolicyError / OSError, nothing started yet).
    `names`: the table of names' addresses the gates check, when a worker shares it (agent/workers.py)."""
    metrics = gateway_metrics()
    ca = None
    policy_path = config.policy
    source: PolicySource = "file"
    if config.policy is not None:
        config.state_dir.mkdir(parents=True, exist_ok=True)
        ca = ensure_ca(config.state_dir, config.ca_name)  # before anything else: devices trust this CA, never a new one
        if config.sync is not None:
            # Start on the last verified Department bundle, if any, so no request is decided by
            # anything else; --policy (or the sample) only covers a gateway that never synced.
            from classgate.agent.sync.gateway_addon import installed_policy

            synced = installed_policy(config.state_dir, config.sync.trust_root)
            if synced is not None:
                policy_path, source = synced, "sync"
    # A gateway always starts: a policy that does not validate falls back to the last good one kept in the
    # state dir (proxy/last_good.py), the sync's installed bundle included; with none, the start stops here.
    holder = PolicyHolder(policy_path, config.overlay, cache_dir=config.state_dir / "compiled", metrics=metrics,
                          source=source, last_good=LastGood(config.state_dir) if config.policy is not None else None,
                          status_dir=config.state_dir if config.policy is not None else None)
    if policy_path is not None:
        holder.load()

    counter = UsageMetrics(metrics) if config.count_usage else None
    # Teachers' class actions: the store's file in the state dir, re-read by every gate when it changes.
    classes = ClassTier(config.state_dir if config.policy is not None else None)
    metrics.watch_class_actions(lambda: classes.in_force(time.time()))
    # Warn-and-continue's signing key is in the state dir: a "continue" holds on every worker and after a restart.
    student = _student_side(config, metrics)
    context = FilterContext(holder, FailSafe(metrics), config.clock, verdicts=counter or NoSink(),
                            events=metrics if config.count_usage else NoEvents(), classes=classes, student=student,
                            names=names if names is not None else NameAddresses())
    # The resolver shares the context (policy holder, clock, the name table the TLS gate checks): one policy
    # for DNS and TLS. Its port is bound now, so a taken one stops the start with a message.
    dns = _bind_dns(context, config.dns) if config.dns is not None and config.policy is not None else None
    try:
        server = _bind_metrics(metrics, config.metrics) if config.policy is not None else None
    except GatewayError:
        if dns is not None:
            dns.listener.sockets.close()
        raise
    addons: list[object] = [*default_addons(context, counter, dns, config.device_connections),
                             MetricsEndpoint(metrics, server)]
    if config.sync is not None:
        # After the filter: it swaps the policy through the holder, which the filter reads per flow.
        from classgate.agent.sync.gateway_addon import SyncAddon

        try:
            addons.append(SyncAddon(config.sync.url, config.sync.trust_root, config.state_dir, holder, metrics,
                                    overlay_path=config.overlay, poll=config.sync.poll,
                                    report_to=config.sync.report_to))
        except (OSError, ValueError) as e:
            if server is not None:
                server.close()
            if dns is not None:
                dns.listener.sockets.close()
            raise GatewayError(f"cannot start the Department sync: {e}") from None
    if config.clock.is_pinned:
        log.warning("CLASSGATE_TEST_NOW is set: the filter's clock is pinned (test-only setting)")
    return Gateway(config, metrics, holder, addons, ca, server, dns)


def _student_side(config: GatewayConfig, metrics: Metrics) -> StudentSide:
    if config.policy is None:
        return StudentSide.in_memory()
    try:
        return StudentSide.from_state_dir(config.state_dir, metrics)
    except StudentKeyError as e:
        raise GatewayError(str(e)) from None


def _bind_dns(context: FilterContext, config: DnsConfig) -> GatewayDns:
    try:
        return build_gateway_dns(context, config)
    except DnsConfigError as e:
        raise GatewayError(str(e)) from None
    except OSError as e:
        raise GatewayError(f"cannot serve DNS on {config.listen}: {e.strerror or e}") from None


def _bind_metrics(metrics: Metrics, address: Address | None) -> MetricsServer | None:
    if address is None:
        return None
    try:
        return metrics_server.start(metrics, address.host, address.port)
    except OSError as e:
        raise GatewayError(f"cannot serve metrics on {address}: {e.strerror or e}") from None
