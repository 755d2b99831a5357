"""Encrypted Client Hello at the TLS gate: real ECH behind a shared front is intercepted for inspected groups
and refused for the others; GREASE ECH is decided on its SNI like any ClientHello."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pytest
from mitmproxy import connection
from mitmproxy.proxy import context as mcontext
from mitmproxy.test import taddons, tflow
from mitmproxy.tls import ClientHello, ClientHelloData, TlsData
from OpenSSL import SSL

from classgate.proxy.addons.tls_gate import ECH_EXTENSION, TlsGate, hides_destination
from classgate.proxy.addons.usage_metrics import UsageMetrics
from classgate.proxy.clock import Clock
from classgate.proxy.context import FilterContext
from classgate.proxy.failsafe import FailSafe
from classgate.proxy.metric_labels import gateway_metrics
from classgate.proxy.policy_holder import PolicyHolder
from tests.proxy.echtest_hello import INNER, OUTER, ech_client_hello, python_client_hello
from tests.proxy.proxytest_support import GUEST, STUDENT, TEACHER, TEST_POLICY

EXTRA_FRONT = "ech.example-cdn.test"


def policy_text(ech: str | None = None) -> str:
    extra = f"  ech_fronts: [{EXTRA_FRONT}]\n" + (f"  ech: {ech}\n" if ech else "")
    return TEST_POLICY.replace("  never_decrypt: [banking]\n", "  never_decrypt: [banking]\n" + extra)


def holder_for(tmp_path: Path, ech: str | None) -> PolicyHolder:
    path = tmp_path / "policy.yaml"
    path.write_text(policy_text(ech), encoding="utf-8")
    h = PolicyHolder(path, cache_dir=tmp_path / "compiled")
    h.load()
    return h


def hello(tctx: taddons.context, client_ip: str, record: bytes, sni: str) -> ClientHelloData:
    client = tflow.tclient_conn()
    client.peername = (client_ip, 40000)
    ctx = mcontext.Context(client, tctx.options)
    ctx.server = connection.Server(address=(sni, 443))
    return ClientHelloData(ctx, ClientHello(record[9:]))


class EchEvents:
    def __init__(self) -> None:
        self.ech: Counter[str] = Counter()

    def record_tls_ech(self, mode: str) -> None:
        self.ech[mode] += 1

    def __getattr__(self, name: str):
        return lambda *args: None


CASES = [
    # (why, client, SNI, ECH extension (None: none), tls.ech, mode, counted as ECH)
    ("real ECH, inspected: intercepted for the outer name", TEACHER, "cloudflare-ech.com", OUTER, None,
     "intercepted", True),
    ("real ECH, inspected student", STUDENT, "cloudflare-ech.com", OUTER, None, "intercepted", True),
    ("real ECH, not inspected: refused", GUEST, "cloudflare-ech.com", OUTER, None, "refused", True),
    ("real ECH, not inspected, tls.ech: allow", GUEST, "cloudflare-ech.com", OUTER, "allow", "passthrough", True),
    ("real ECH, inspected, tls.ech: allow: still intercepted", TEACHER, "cloudflare-ech.com", OUTER, "allow",
     "intercepted", True),
    ("another built-in front", GUEST, "cover.defo.ie", OUTER, None, "refused", True),
    ("a front the policy adds", GUEST, EXTRA_FRONT, OUTER, None, "refused", True),
    ("the front without ECH is just a site", GUEST, "cloudflare-ech.com", None, None, "passthrough", False),
    ("GREASE ECH, allowed name: decided on the SNI", GUEST, "allowed.test", OUTER, None, "passthrough", False),
    ("GREASE ECH, blocked name", GUEST, "blocked.test", OUTER, None, "refused", False),
    ("GREASE ECH, inspected", TEACHER, "allowed.test", OUTER, None, "intercepted", False),
    ("GREASE ECH to a bank: never decrypted", STUDENT, "bank.test", OUTER, None, "passthrough", False),
    ("the inner form never travels in the clear: not ECH on the wire", GUEST, "cloudflare-ech.com", INNER, None,
     "passthrough", False),
]


@pytest.mark.parametrize(("why", "client", "sni", "kind", "ech", "mode", "counted"), CASES,
                         ids=[c[0] for c in CASES])
def test_ech_decisions(tmp_path: Path, why: str, client: str, sni: str, kind: int | None, ech: str | None,
                       mode: str, counted: bool) -> None:
    metrics = gateway_metrics(process_metrics=False)
    events = EchEvents()
    context = FilterContext(holder_for(tmp_path, ech), FailSafe(metrics), Clock(dt.datetime(2026, 11, 23, 9)),
                            verdicts=UsageMetrics(metrics), events=events)
    gate = TlsGate(context)
    record = ech_client_hello(sni, kind=kind) if kind is not None else python_client_hello(sni)
    with taddons.context() as tctx:
        data = hello(tctx, client, record, sni)
        assert data.client_hello.sni == sni
        assert gate.tls_clienthello(data) is None
        tls_data = TlsData(data.context.client, data.context)
        gate.tls_start_client(tls_data)
    assert gate.counts[mode] == 1 and sum(gate.counts.values()) == 1, gate.counts
    assert data.ignore_connection == (mode == "passthrough")
    # Refused: no certificate is offered (our own empty server connection); intercepted: mitmproxy's, with a
    # certificate for the SNI signed by the school CA (tests/proxy/test_dns_e2e.py looks at it for real).
    assert isinstance(tls_data.ssl_conn, SSL.Connection) == (mode == "refused")
    assert events.ech == (Counter({mode: 1}) if counted else Counter())
    assert metrics.registry.get_sample_value("classgate_tls_connections_total", {"mode": mode}) == 1


@pytest.mark.parametrize(
    ("sni", "extensions", "hides"),
    [
        ("cloudflare-ech.com", [(ECH_EXTENSION, b"\x00\x00\x01")], True),
        ("Cloudflare-ECH.com.", [(ECH_EXTENSION, b"\x00")], True),
        ("cloudflare-ech.com", [(ECH_EXTENSION, b"\x01")], False),  # inner
        ("cloudflare-ech.com", [(0x0010, b"\x00")], False),
        ("www.cloudflare-ech.com", [(ECH_EXTENSION, b"\x00")], False),  # only the front itself
        (None, [(ECH_EXTENSION, b"\x00")], False),
    ],
)
def test_hides_destination(sni: str | None, extensions: list, hides: bool) -> None:
    class Hello:
        pass

    h = Hello()
    h.sni, h.extensions = sni, extensions  # type: ignore[attr-defined]
    assert hides_destination(h, frozenset({"cloudflare-ech.com"})) is hides  # type: ignore[arg-type]
