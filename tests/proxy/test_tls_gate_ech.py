"""Encrypted Client Hello at the TLS gate: real ECH behind a shared front is intercepted for inspected groups
and refused for the others; GREASE ECH is decided on its SNI like any ClientHello."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pytest
from mitmproxy import connection
from mitmproxy.proxy import context as mcontext
from mitmproxy.proxy import events as mevents
from mitmproxy.proxy import layer as mlayer
from mitmproxy.proxy.layers.tcp import TCPLayer
from mitmproxy.test import taddons, tflow
from mitmproxy.tls import ClientHello, ClientHelloData, TlsData
from OpenSSL import SSL

from classgate.metrics.registry import Metrics
from classgate.proxy.addons.early_layer import EarlyOutcome
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


def counted_gate(tmp_path: Path, ech: str | None) -> tuple[TlsGate, Metrics, EchEvents]:
    """A TLS gate on the test policy (with `tls.ech`), counting into its own metrics and ECH events."""
    metrics = gateway_metrics(process_metrics=False)
    events = EchEvents()
    context = FilterContext(holder_for(tmp_path, ech), FailSafe(metrics), Clock(dt.datetime(2026, 11, 23, 9)),
                            verdicts=UsageMetrics(metrics), events=events)
    return TlsGate(context), metrics, events


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
    gate, metrics, events = counted_gate(tmp_path, ech)
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


@pytest.mark.parametrize(("why", "client", "sni", "kind", "ech", "mode", "counted"), CASES,
                         ids=[c[0] for c in CASES])
def test_the_early_decision_is_the_clienthello_decision(tmp_path: Path, why: str, client: str, sni: str,
                                                         kind: int | None, ech: str | None, mode: str,
                                                         counted: bool) -> None:
    """The same table through the layer decision (proxy/addons/early_layer.py): a passthrough is relayed there,
    anything else is applied by the TLS layer's tls_clienthello without a second decision or count."""
    gate, metrics, events = counted_gate(tmp_path, ech)
    record = ech_client_hello(sni, kind=kind) if kind is not None else python_client_hello(sni)
    with taddons.context() as tctx:
        data = hello(tctx, client, record, sni)
        nextlayer = mlayer.NextLayer(data.context)
        nextlayer.events.append(mevents.DataReceived(data.context.client, record))
        outcome = gate.early_layer(nextlayer)
        assert outcome is (EarlyOutcome.RELAYED if mode == "passthrough" else EarlyOutcome.LATER)
        assert isinstance(nextlayer.layer, TCPLayer) == (mode == "passthrough")
        if mode != "passthrough":
            data.establish_server_tls_first = True  # what TlsConfig would ask under connection_strategy=eager
            assert gate.tls_clienthello(data) is None
            assert not data.ignore_connection
            assert data.establish_server_tls_first == (mode == "intercepted" and not counted and sni != "blocked.test")
        tls_data = TlsData(data.context.client, data.context)
        gate.tls_start_client(tls_data)
    assert gate.counts[mode] == 1 and sum(gate.counts.values()) == 1, gate.counts
    assert isinstance(tls_data.ssl_conn, SSL.Connection) == (mode == "refused")
    assert events.ech == (Counter({mode: 1}) if counted else Counter())
    assert metrics.registry.get_sample_value("classgate_tls_connections_total", {"mode": mode}) == 1


def _handshake_records(handshake: bytes) -> bytes:
    """A handshake message cut into TLS records of 16 KiB, as a ClientHello too large for one arrives."""
    size = 16 * 1024
    return b"".join(b"\x16\x03\x01" + len(chunk).to_bytes(2, "big") + chunk
                    for chunk in (handshake[i:i + size] for i in range(0, len(handshake), size)))


@pytest.mark.parametrize(
    ("why", "first_bytes", "outcome"),
    [
        ("a ClientHello not all there yet is waited for", lambda r: r[:60], EarlyOutcome.WAITING),
        ("the record header alone", lambda r: r[:5], EarlyOutcome.WAITING),
        ("bytes that are no ClientHello go to the TLS layer, which reports them",
         lambda r: b"\x16\x03\x01\x00\x08" + b"\x02" + b"\x00" * 7, EarlyOutcome.LATER),
        ("more than 32 KiB and still not complete: the TLS layer reads the rest",
         lambda r: _handshake_records(b"\x01\xff\xff\xff" + b"\x00" * (48 * 1024 - 4)), EarlyOutcome.LATER),
    ],
)
def test_the_early_decision_waits_or_leaves_it_to_the_tls_layer(tmp_path: Path, why: str, first_bytes,
                                                                outcome: EarlyOutcome) -> None:
    gate, _, _ = counted_gate(tmp_path, None)
    with taddons.context() as tctx:
        data = hello(tctx, GUEST, python_client_hello("allowed.test"), "allowed.test")
        nextlayer = mlayer.NextLayer(data.context)
        nextlayer.events.append(mevents.DataReceived(data.context.client, first_bytes(python_client_hello("x.test"))))
        assert gate.early_layer(nextlayer) is outcome
        assert nextlayer.layer is None
    assert sum(gate.counts.values()) == 0  # nothing decided yet


def test_a_different_clienthello_in_the_tls_layer_is_decided_again(tmp_path: Path) -> None:
    """Defensive: the remembered decision applies only to the ClientHello it was taken on."""
    gate, _, _ = counted_gate(tmp_path, None)
    with taddons.context() as tctx:
        data = hello(tctx, TEACHER, python_client_hello("allowed.test"), "allowed.test")
        nextlayer = mlayer.NextLayer(data.context)
        nextlayer.events.append(mevents.DataReceived(data.context.client, python_client_hello("allowed.test")))
        assert gate.early_layer(nextlayer) is EarlyOutcome.LATER  # a teacher: intercepted
        other = ClientHelloData(data.context, ClientHello(python_client_hello("blocked.test")[9:]))
        gate.tls_clienthello(other)
    assert gate.counts == {**gate.counts, "intercepted": 2}  # decided (and counted) again: blocked, intercepted
