"""DeviceConnectionLimit: one device's connections past its limit are closed at once, counted, never logged
with the address; and, end to end, a real gateway holds the line while other devices carry on."""

from __future__ import annotations

import logging
import socket
import time
import urllib.request

import pytest
from mitmproxy.test import tflow

from classgate.proxy.addons.device_limit import REFUSED, DeviceConnectionLimit, worker_share
from tests.proxy.proxytest_support import (  # noqa: F401 - origin, origin_pki: fixtures
    STUDENT,
    TEACHER,
    TEST_POLICY,
    ProxyProcess,
    origin,
    origin_pki,
    read_head,
)


class Counted:
    def __init__(self) -> None:
        self.refusals = 0

    def record_device_limit(self) -> None:
        self.refusals += 1


def client(address: str):
    c = tflow.tclient_conn()
    c.peername = (address, 40000)
    return c


# Steps: "+a" device a opens a connection (numbered from 0 in the order opened), "-1" connection 1 closes.
@pytest.mark.parametrize(
    ("limit", "steps", "refused"),
    [
        (2, ["+a", "+a"], []),
        (2, ["+a", "+a", "+a"], [2]),  # the third from the same device
        (2, ["+a", "+a", "+b", "+b"], []),  # another device has its own count
        (2, ["+a", "+a", "-0", "+a"], []),  # one closed: room for one more
        (2, ["+a", "+a", "+a", "-2", "+a"], [2, 3]),  # the refused one closing frees nothing the device holds
        (2, ["+a", "+a", "+a", "-0", "+a"], [2, 3]),  # two still open: 1, and the refused 2 until it closes
        (2, ["+a", "+a", "+a", "-2", "-0", "+a"], [2]),  # one held closed: room again
        (1, ["+a", "-0", "+a", "-1", "+a"], []),
        (0, ["+a"] * 50, []),  # 0: no limit
    ],
)
def test_connections_past_a_device_s_limit_are_refused(limit, steps, refused):
    events = Counted()
    gate = DeviceConnectionLimit(limit, events)  # type: ignore[arg-type]
    conns = []
    for step in steps:
        if step.startswith("+"):
            conn = client(step[1:])
            gate.client_connected(conn)
            conns.append(conn)
        else:
            gate.client_disconnected(conns[int(step[1:])])
    assert [i for i, c in enumerate(conns) if c.error == REFUSED] == refused
    assert events.refusals == len(refused)


def test_every_connection_closed_leaves_no_address_behind():
    gate = DeviceConnectionLimit(3, Counted())  # type: ignore[arg-type]
    conns = [client(f"10.0.0.{i % 7}") for i in range(40)]
    for c in conns:
        gate.client_connected(c)
    for c in conns:
        gate.client_disconnected(c)
    assert gate._open == {}  # no memory of devices that have gone


def test_refusals_are_logged_at_most_once_a_minute_without_the_address(caplog):
    now = [1000.0]
    gate = DeviceConnectionLimit(1, Counted(), monotonic=lambda: now[0])  # type: ignore[arg-type]
    caplog.set_level(logging.WARNING, logger="classgate.proxy.addons.device_limit")
    for _ in range(6):
        gate.client_connected(client("10.1.2.3"))
    now[0] += 61
    gate.client_connected(client("10.1.2.3"))
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("classgate: 1 connection(s) refused")
    assert warnings[1].startswith("classgate: 5 connection(s) refused")  # the 4 not logged, and this one
    assert not any("10.1.2.3" in w for w in warnings)


@pytest.mark.parametrize(
    ("limit", "workers", "share"),
    [(1000, 1, 1000), (1000, 2, 500), (1000, 3, 334), (1, 4, 1), (0, 4, 0)],
)
def test_each_worker_enforces_its_share(limit, workers, share):
    assert worker_share(limit, workers) == share


# --- end to end ---------------------------------------------------------------------------------------


def _request(sock: socket.socket, host: str = "allowed.test") -> bytes:
    sock.sendall(f"GET http://{host}/ HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return read_head(sock)


def _gateway(tmp_path, origin, origin_pki, *, workers: int, limit: int) -> ProxyProcess:  # noqa: F811
    policy = tmp_path / "policy.yaml"
    policy.write_text(TEST_POLICY, encoding="utf-8")
    return ProxyProcess(policy, tmp_path / "state", origin, origin_pki.ca,
                        extra=["--workers", str(workers), "--device-connections", str(limit)])


def _refused(sock: socket.socket) -> bool:
    """The gateway closed this new connection without answering it."""
    try:
        return _request(sock) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


@pytest.mark.e2e
def test_a_device_holding_its_limit_gets_no_more_and_others_carry_on(tmp_path, origin, origin_pki):  # noqa: F811
    gateway = _gateway(tmp_path, origin, origin_pki, workers=1, limit=20)
    held: list[socket.socket] = []
    try:
        for _ in range(20):  # a student's script opens connections and keeps them
            sock = socket.create_connection(("127.0.0.1", gateway.port), source_address=(STUDENT, 0), timeout=5)
            held.append(sock)
            assert _request(sock).startswith(b"HTTP/1.1 200")  # answered, so the gateway counts it
        extra = socket.create_connection(("127.0.0.1", gateway.port), source_address=(STUDENT, 0), timeout=5)
        with extra:
            assert _refused(extra)
        with socket.create_connection(("127.0.0.1", gateway.port), source_address=(TEACHER, 0), timeout=5) as other:
            assert _request(other).startswith(b"HTTP/1.1 200")  # another device is served
        for sock in held[:5]:
            sock.close()
        del held[:5]
        deadline = time.monotonic() + 5  # the gateway sees the closes on its next loop turns
        while True:
            again = socket.create_connection(("127.0.0.1", gateway.port), source_address=(STUDENT, 0), timeout=5)
            held.append(again)
            if not _refused(again) or time.monotonic() > deadline:
                break
            held.pop().close()
            time.sleep(0.1)
        assert len(held) == 16, "a closed connection made no room for a new one"
        with urllib.request.urlopen(f"http://127.0.0.1:{gateway.metrics_port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        refused = [line for line in text.splitlines()
                   if line.startswith('classgate_connections_refused_total{reason="device_limit"}')]
        assert refused and float(refused[0].rsplit(" ", 1)[1]) >= 1, refused
        log = gateway.output()
        assert "connection(s) refused: a device reached its limit" in log
        assert STUDENT not in log
    finally:
        for sock in held:
            sock.close()
        assert gateway.stop() == 0, gateway.output()


@pytest.mark.e2e
def test_with_two_workers_the_limit_holds_over_both(tmp_path, origin, origin_pki):  # noqa: F811
    """Each worker counts its own connections against half the limit: a device never holds more than the
    limit, and at least the share of one worker (the kernel's hash may send most of them to one)."""
    gateway = _gateway(tmp_path, origin, origin_pki, workers=2, limit=20)
    held: list[socket.socket] = []
    try:
        answered = 0
        for _ in range(40):
            sock = socket.create_connection(("127.0.0.1", gateway.port), source_address=(STUDENT, 0), timeout=5)
            held.append(sock)
            if not _refused(sock):
                answered += 1
        assert 10 <= answered <= 20, answered
    finally:
        for sock in held:
            sock.close()
        assert gateway.stop() == 0, gateway.output()
