"""`classgate run`: the filtering gateway: mitmproxy with the classgate addons, in one process or in workers
(agent/workers.py) that share the port."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from importlib import resources
from pathlib import Path

import click

from classgate.agent.commands.options import Interval, overlay_option, state_dir_option
from classgate.agent.gateway import (
    DEFAULT_LISTEN,
    DEFAULT_METRICS,
    Gateway,
    GatewayConfig,
    GatewayError,
    SyncSettings,
    build_gateway,
)
from classgate.agent.master import MasterError, log_times_in, run_master, serve_gateway
from classgate.agent.port_claim import PortClaimError, claim_port
from classgate.agent.sync.loop import PollSettings
from classgate.metrics import server as metrics_server
from classgate.policies import PolicyError
from classgate.proxy.addons.device_limit import DEFAULT_DEVICE_CONNECTIONS
from classgate.proxy.address import Address, parse_address
from classgate.proxy.ca import CaError
from classgate.proxy.clock import Clock, ClockError
from classgate.proxy.dns.config import (
    DEFAULT_RATE,
    PRIVATE_NETWORKS,
    DnsConfig,
    DnsConfigError,
    parse_network,
    parse_upstream,
)


def sample_policy() -> Path:
    """The Department sample policy shipped in the package: the default, so `classgate run` just works."""
    return Path(str(resources.files("classgate.policies").joinpath("samples/department.yaml")))


def _address(spec: str, what: str) -> Address:
    try:
        return parse_address(spec)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint=what) from None


@click.command()
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The Department's policy file (YAML). Default: the sample policy shipped with classgate.",
)
@overlay_option
@click.option("--listen", default=str(DEFAULT_LISTEN), show_default=True, help="Proxy address HOST:PORT.")
@click.option(
    "--mode",
    type=click.Choice(["regular", "transparent"]),
    default="regular",
    show_default=True,
    help="regular: devices are configured to use the proxy; transparent: the gateway redirects traffic to it.",
)
@click.option(
    "--metrics",
    "metrics_listen",
    default=str(DEFAULT_METRICS),
    show_default=True,
    help='Prometheus endpoint HOST:PORT, or "off".',
)
@state_dir_option
@click.option("--ca-name", default=None, metavar="SCHOOL",
              help="The school's name on the CA created at the first start, as devices show it (at most 40 "
              "characters). An existing CA is never renamed.")
@click.option("--sync-from", "sync_url", default=None, help="Department sync URL (TUF repository).")
@click.option(
    "--trust",
    "trust_root",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The Department's root.json to verify synced policies with (with --sync-from).",
)
@click.option(
    "--sync-interval",
    type=Interval(),
    default=None,
    help="Seconds between Department polls, jittered between MIN and MAX (with --sync-from).  [default: 300-900]",
)
@click.option(
    "--sync-report-to",
    default=None,
    metavar="URL",
    help="POST this gateway's sync status (version, health; no usage data) to the Department. Off by default.",
)
@click.option(
    "--dns",
    "dns_listen",
    default=None,
    metavar="HOST:PORT",
    help="Also answer DNS here (UDP and TCP), deciding every query with the policy. Default: off.",
)
@click.option(
    "--dns-upstream",
    multiple=True,
    metavar="ADDR[:PORT]",
    help="A resolver the gateway's DNS asks (repeatable, in order). Default: the nameservers of /etc/resolv.conf.",
)
@click.option(
    "--dns-allow",
    multiple=True,
    metavar="NETWORK",
    help="Networks whose devices may use the gateway's DNS, beside the gateway itself and the policy's groups "
    "(repeatable). Default: the private ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7...).",
)
@click.option(
    "--dns-rate",
    type=click.FloatRange(min=1),
    default=DEFAULT_RATE,
    show_default=True,
    metavar="QPS",
    help="DNS queries per second each device may send (bursts of 4x); more are dropped.",
)
@click.option(
    "--device-connections",
    type=click.IntRange(min=0),
    default=DEFAULT_DEVICE_CONNECTIONS,
    show_default=True,
    metavar="N",
    help="Connections one device may hold open to the gateway at once; past that its new ones are closed "
    "at once (0: no limit). Raise it for an access point that puts many devices behind one address (NAT).",
)
@click.option(
    "--set",
    "mitm_options",
    multiple=True,
    metavar="OPTION=VALUE",
    help="Set a mitmproxy option (advanced; e.g. ssl_verify_upstream_trusted_ca=FILE). Repeatable.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=64),
    default=None,
    metavar="N",
    help="Proxy processes sharing the port, each on a core; the kernel spreads connections over them "
    "(SO_REUSEPORT). 1: one process, no supervisor.  [default: the number of cores]",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging (includes full blocked URLs).")
def run(
    policy_path: Path | None,
    overlay_path: Path | None,
    listen: str,
    mode: str,
    metrics_listen: str,
    state_dir: Path,
    ca_name: str | None,
    sync_url: str | None,
    trust_root: Path | None,
    sync_interval: tuple[float, float] | None,
    sync_report_to: str | None,
    dns_listen: str | None,
    dns_upstream: tuple[str, ...],
    dns_allow: tuple[str, ...],
    dns_rate: float,
    device_connections: int,
    mitm_options: tuple[str, ...],
    workers: int | None,
    verbose: bool,
) -> None:
    """Run the filtering proxy: every HTTP and HTTPS request is decided by the policy.

    Ctrl-C or SIGTERM stops it; SIGHUP (or editing the policy files) reloads the policy without
    dropping connections (in every worker). Devices get the school CA from http://classgate.ca/ through the proxy.
    """
    if bool(sync_url) != bool(trust_root):
        raise click.UsageError("--sync-from and --trust go together")
    if (sync_interval or sync_report_to) and not sync_url:
        raise click.UsageError("--sync-interval and --sync-report-to need --sync-from")
    for item in mitm_options:
        if "=" not in item:
            raise click.BadParameter(f"{item!r}: expected OPTION=VALUE", param_hint="--set")
    try:
        clock = Clock.from_environment()
    except ClockError as e:
        raise click.ClickException(str(e)) from None
    sync = None
    if sync_url and trust_root:
        from classgate.agent.sync.gateway_addon import poll_settings

        sync = SyncSettings(sync_url, trust_root, poll=poll_settings(*sync_interval) if sync_interval else
                            PollSettings(), report_to=sync_report_to)
    metrics = None if metrics_listen.lower() in ("off", "none", "") else _address(metrics_listen, "--metrics")
    if (dns_upstream or dns_allow) and not dns_listen:
        raise click.UsageError("--dns-upstream and --dns-allow need --dns HOST:PORT")
    dns = _dns_config(dns_listen, dns_upstream, dns_allow, dns_rate) if dns_listen else None
    config = GatewayConfig(
        policy=policy_path or sample_policy(),
        overlay=overlay_path,
        state_dir=state_dir,
        ca_name=ca_name,
        listen=_address(listen, "--listen"),
        mode="transparent" if mode == "transparent" else "regular",
        metrics=metrics,
        count_usage=metrics is not None,
        sync=sync,
        dns=dns,
        clock=clock,
        verbose=verbose,
        mitmproxy_options=mitm_options,
        device_connections=device_connections,
    )
    count = workers or os.cpu_count() or 1
    try:
        claim = claim_port(config.listen)
    except PortClaimError as e:
        raise click.ClickException(str(e)) from None
    try:
        _serve(config, count)
    finally:
        claim.close()
    click.echo("classgate: stopped")


def _serve(config: GatewayConfig, count: int) -> None:
    try:
        # With workers this loads the policy once here (it compiles into <state>/compiled, where the
        # workers find it) and checks the DNS port; the workers bind their own sockets after.
        gateway = build_gateway(dataclasses.replace(config, metrics=None) if count > 1 else config)
    except PolicyError as e:
        raise click.ClickException(f"the policy cannot be used:\n{e}") from None
    except (CaError, GatewayError) as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(f"cannot read the policy: {e}") from None
    if count == 1:
        _print_banner(gateway, config, gateway.metrics_server.url if gateway.metrics_server else None)
        try:
            run_master(lambda: serve_gateway(gateway), config.listen, share_port=False)
        except MasterError as e:
            raise click.ClickException(str(e)) from None
        finally:
            gateway.close()
    else:
        _supervise(gateway, config, count)


def _supervise(gateway: Gateway, config: GatewayConfig, count: int) -> None:
    """Run `count` workers on the shared port, with one metrics endpoint merging theirs."""
    from classgate.agent.supervisor import Supervisor
    from classgate.metrics.merge import MergedMetrics

    supervisor = Supervisor(config, count, config.state_dir / "workers")
    server = None
    try:
        if config.metrics is not None:
            merged = MergedMetrics(supervisor.endpoints, extra=[supervisor.collector()])
            try:
                server = metrics_server.start(merged, config.metrics.host, config.metrics.port)
            except OSError as e:
                raise click.ClickException(f"cannot serve metrics on {config.metrics}: {e.strerror or e}") from None
        _print_banner(gateway, config, server.url if server else None, workers=count)
        gateway.close()  # the DNS port was only checked here: worker 0 serves it
        try:
            supervisor.start()
        except GatewayError as e:
            raise click.ClickException(str(e)) from None
        click.echo(f"workers:   {count} (pids {', '.join(str(p) for p in supervisor.pids())})")
        supervisor.serve()
    finally:
        supervisor.stop()
        if server is not None:
            server.close()


def _print_banner(gateway: Gateway, config: GatewayConfig, metrics_url: str | None, workers: int = 1) -> None:
    policy = gateway.policy
    assert policy is not None and gateway.ca is not None
    log_times_in(policy.timezone.key)
    gateway.holder.on_swap(lambda p: log_times_in(p.timezone.key))
    click.echo(f"classgate: filtering proxy on {config.listen} ({config.mode} mode)")
    click.echo(f"policy:    {policy.name} version {policy.version} ({gateway.holder.policy_path})")
    if config.overlay:
        click.echo(f"overlay:   {config.overlay}")
    fallback = gateway.holder.fallback
    if fallback is not None:
        click.echo(f"WARNING:   {gateway.holder.policy_path} does not validate; enforcing the LAST GOOD policy "
                   f"(version {fallback.kept.version}) until it is fixed:", err=True)
        for problem in fallback.problems:
            click.echo(f"             {problem}", err=True)
    click.echo(f"school CA: {gateway.ca.cert_file} (devices: http://classgate.ca/ through the proxy)")
    if gateway.ca.created:
        click.echo(f"           created now: \"{gateway.ca.name}\"; every device must install it before HTTPS "
                   "filtering works (classgate ca export)")
    elif config.ca_name and config.ca_name not in gateway.ca.name:
        click.echo(f"           (--ca-name ignored: the CA exists already as \"{gateway.ca.name}\")", err=True)
    click.echo(f"           SHA-256 {gateway.ca.sha256_fingerprint()}")
    click.echo(f"metrics:   {metrics_url + '/metrics' if metrics_url else 'off'}")
    if gateway.dns is not None:
        upstreams = ", ".join(str(u) for u in gateway.dns.resolver.upstream.servers)
        where = " in worker 0" if workers > 1 else ""
        click.echo(f"dns:       {gateway.dns.listener.address} (upstream {upstreams}){where}")
    if config.sync is not None:
        click.echo(f"sync:      {config.sync.url}")


def _dns_config(listen: str, upstreams: tuple[str, ...], allow: tuple[str, ...], rate: float) -> DnsConfig:
    """The resolver's settings from `--dns*`; a bad value is a usage error naming the option."""
    address = _address(listen, "--dns")
    try:
        ipaddress.ip_address(address.host)
    except ValueError:
        raise click.BadParameter(f"{listen!r}: listen on an IP address (e.g. 0.0.0.0:8053)", param_hint="--dns") from None
    try:
        servers = tuple(parse_upstream(u) for u in upstreams)
    except DnsConfigError as e:
        raise click.BadParameter(str(e), param_hint="--dns-upstream") from None
    try:
        networks = tuple(parse_network(n) for n in allow) if allow else PRIVATE_NETWORKS
    except DnsConfigError as e:
        raise click.BadParameter(str(e), param_hint="--dns-allow") from None
    return DnsConfig(listen=address, upstreams=servers, allow=networks, rate=rate, burst=rate * 4)
