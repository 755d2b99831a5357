"""The class actions kept in a state dir, as the gates see them through FilterContext.classes: the gateway's
resolver (proxy/dns/blocking.py), the TLS gate (no passthrough for what a group may not reach), the TCP gate."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from mitmproxy.test import taddons, tflow

from classgate.policies import Policy, load_policy
from classgate.policies.class_actions import ClassAction
from classgate.proxy.addons.tcp_gate import TcpGate
from classgate.proxy.addons.tls_gate import TlsGate
from classgate.proxy.class_store import ClassStore
from classgate.proxy.class_watch import ClassTier
from classgate.proxy.clock import Clock
from classgate.proxy.context import FilterContext
from classgate.proxy.dns.blocking import plan_query
from classgate.proxy.failsafe import FailSafe
from classgate.proxy.policy_holder import PolicyHolder
from tests.proxy.proxytest_support import GUEST, STUDENT, TEACHER, TEST_POLICY
from tests.proxy.proxytest_tls import hello_data, tls_start

POLICY = """\
classgate: 1
name: class-dns
categories:
  games: {domains: [games.test]}
groups:
  students: {networks: [10.0.0.0/16]}
rules:
  - {name: no-games, action: block, categories: [games]}
"""
DNS_STUDENT, DNS_OTHER = "10.0.0.5", "10.9.0.5"


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    path = tmp_path_factory.mktemp("class-dns") / "policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    return load_policy(path)


@pytest.mark.parametrize(
    ("kind", "sites", "name", "client", "plan"),
    [
        (None, (), "games.test", DNS_STUDENT, "block"),
        ("allow", ("games.test",), "games.test", DNS_STUDENT, "forward"),
        ("pause", (), "edu.test", DNS_STUDENT, "block"),
        ("pause", (), "edu.test", DNS_OTHER, "forward"),
        ("lock", ("edu.test",), "www.edu.test", DNS_STUDENT, "forward"),
        ("lock", ("edu.test",), "news.test", DNS_STUDENT, "block"),
    ],
)
def test_resolver_applies_class_actions(tmp_path: Path, policy: Policy, kind: str | None, sites: tuple[str, ...],
                                        name: str, client: str, plan: str) -> None:
    now = time.time()
    if kind is not None:
        ClassStore(tmp_path).add(ClassAction("", kind, "students", sites, now - 1, now + 600, "lan"),  # type: ignore[arg-type]
                                 now)
    tier = ClassTier(tmp_path)
    assert plan_query(policy, name, client, None, decide_host=tier.decide_host).kind == plan


# -- the TLS and TCP gates, in-process (mitmproxy.test.taddons), on the proxy tests' policy ---------------------

PINNED = dt.datetime(2026, 11, 23, 9, 0)  # the gates' pinned clock: actions are in force at this instant


@pytest.fixture
def gate_context(tmp_path: Path) -> Callable[..., FilterContext]:
    path = tmp_path / "policy.yaml"
    path.write_text(TEST_POLICY, encoding="utf-8")
    holder = PolicyHolder(path, cache_dir=tmp_path / "compiled")
    holder.load()
    policy = holder.policy
    assert policy is not None
    at = PINNED.replace(tzinfo=policy.timezone).timestamp()

    def make(*actions: tuple[str, str, tuple[str, ...]]) -> FilterContext:
        store = ClassStore(tmp_path / "state")
        for kind, group, sites in actions:
            store.add(ClassAction("", kind, group, sites, at - 60, at + 600, "lan"), at)  # type: ignore[arg-type]
        return FilterContext(holder, FailSafe(), Clock(PINNED), classes=ClassTier(tmp_path / "state"))

    return make


@pytest.mark.parametrize(
    ("actions", "client", "sni", "server", "mode"),
    [
        ((), GUEST, "allowed.test", None, "passthrough"),
        ((("pause", "guests", ()),), GUEST, "allowed.test", None, "refused"),  # a paused group: no passthrough
        ((("pause", "guests", ()),), GUEST, "bank.test", None, "refused"),  # never_decrypt is no way out
        ((("pause", "students", ()),), STUDENT, "allowed.test", None, "intercepted"),  # the block page shows
        ((("pause", "students", ()),), TEACHER, "bank.test", None, "passthrough"),  # another group
        ((), GUEST, "blocked.test", None, "refused"),
        ((("allow", "guests", ("blocked.test",)),), GUEST, "blocked.test", None, "passthrough"),
        ((("lock", "guests", ("allowed.test",)),), GUEST, "video.test", None, "refused"),
        ((("lock", "guests", ("allowed.test",)),), GUEST, "www.allowed.test", None, "passthrough"),
        # A lock names sites by name: the address a client CONNECTs to is judged by its SNI, as for the default.
        ((("lock", "guests", ("allowed.test",)),), GUEST, "allowed.test", ("10.9.8.7", 443), "passthrough"),
        ((("lock", "guests", ("allowed.test",)),), GUEST, None, ("10.9.8.7", 443), "refused"),
    ],
)
def test_tls_gate(gate_context: Callable[..., FilterContext], actions: tuple, client: str, sni: str | None,
                  server: tuple[str, int] | None, mode: str) -> None:
    gate = TlsGate(gate_context(*actions))
    with taddons.context(gate) as tctx:
        data = hello_data(tctx, client, sni, server=server) if server else hello_data(tctx, client, sni)
        assert gate.tls_clienthello(data) is None
        gate.tls_start_client(tls_start(data))
    assert gate.counts[mode] == 1, gate.counts
    assert data.ignore_connection is (mode == "passthrough")


@pytest.mark.parametrize(
    ("actions", "client", "refused"),
    [
        ((), STUDENT, False),
        ((("pause", "students", ()),), STUDENT, True),  # a raw tunnel is no way out of a pause
        ((("pause", "students", ()),), TEACHER, False),
        ((("lock", "students", ("allowed.test",)),), STUDENT, False),
        ((("lock", "students", ("other.test",)),), STUDENT, True),
    ],
)
def test_tcp_gate(gate_context: Callable[..., FilterContext], actions: tuple, client: str, refused: bool) -> None:
    from mitmproxy.proxy.server_hooks import ServerConnectionHookData

    gate = TcpGate(gate_context(*actions))
    with taddons.context(gate):
        flow = tflow.ttcpflow()
        flow.client_conn.peername = (client, 40000)
        flow.server_conn.address = ("allowed.test", 22)
        gate.tcp_start(flow)
        data = ServerConnectionHookData(server=flow.server_conn, client=flow.client_conn)
        gate.server_connect(data)
    assert (data.server.error is not None) is refused
