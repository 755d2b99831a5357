"""Passthroughs relayed outside mitmproxy (proxy/addons/passthrough_splice.py), end to end against a real
`classgate run`: they still reach the origin intact, leave no descriptor behind, keep counting against their
device's limit while they are open, and never reach the gateway itself."""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest

from tests.proxy.proxytest_support import (  # noqa: F401 - origin, origin_pki: fixtures
    GUEST,
    TEST_POLICY,
    ProxyProcess,
    free_port,
    origin,
    origin_pki,
    read_head,
)

pytestmark = pytest.mark.e2e


def _gateway(tmp_path: Path, origin, origin_pki, *, limit: int = 2000, redirect: bool = True) -> ProxyProcess:  # noqa: F811
    policy = tmp_path / "policy.yaml"
    policy.write_text(TEST_POLICY, encoding="utf-8")
    return ProxyProcess(policy, tmp_path / "state", origin if redirect else None, origin_pki.ca, redirect=redirect,
                        extra=["--workers", "1", "--device-connections", str(limit)])


def _tunnel(gateway: ProxyProcess, target: str) -> socket.socket:
    """A CONNECT tunnel from the guests' address (not inspected: TLS in it is passed through)."""
    raw = socket.create_connection(("127.0.0.1", gateway.port), timeout=10, source_address=(GUEST, 0))
    raw.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    head = read_head(raw)
    assert head.startswith(b"HTTP/1.1 200"), head
    return raw


def _passthrough(gateway: ProxyProcess, ca: Path, path: str) -> ssl.SSLSocket:
    """A passed-through TLS session to allowed.test (the test redirect sends it to the origin), one request
    answered; left open."""
    tls = ssl.create_default_context(cafile=str(ca)).wrap_socket(_tunnel(gateway, "allowed.test:443"),
                                                                  server_hostname="allowed.test")
    tls.sendall(f"GET {path} HTTP/1.1\r\nHost: allowed.test\r\n\r\n".encode())
    head = read_head(tls)
    assert head.startswith(b"HTTP/1.1 200"), head
    issuer = dict(x[0] for x in tls.getpeercert()["issuer"])
    assert "test origin" in str(issuer), issuer  # the origin's own certificate: passed through, not intercepted
    return tls


def _descriptors(pid: int) -> int:
    """Open descriptors of the process and its children (the worker, under a supervisor)."""
    total = 0
    pending = [pid]
    while pending:
        p = pending.pop()
        try:
            total += len(os.listdir(f"/proc/{p}/fd"))
            for task in os.listdir(f"/proc/{p}/task"):
                pending += [int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split()]
        except FileNotFoundError:
            continue
    return total


def test_passthroughs_reach_the_origin_and_leave_no_descriptor_behind(tmp_path, origin, origin_pki):  # noqa: F811
    gateway = _gateway(tmp_path, origin, origin_pki)
    try:
        _passthrough(gateway, origin_pki.ca, "/warm-up").close()
        time.sleep(0.5)
        before = _descriptors(gateway.proc.pid)
        for i in range(40):
            with _passthrough(gateway, origin_pki.ca, f"/splice-{i}"):
                pass
        seen = [s.path for s in origin.find("allowed.test", "/splice-") if s.scheme == "https"]
        assert seen[-40:] == [f"/splice-{i}" for i in range(40)], seen
        deadline = time.monotonic() + 10
        while _descriptors(gateway.proc.pid) > before + 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _descriptors(gateway.proc.pid) <= before + 2, (before, _descriptors(gateway.proc.pid))
    finally:
        assert gateway.stop() == 0, gateway.output()


def test_relayed_passthroughs_count_against_their_device_s_limit(tmp_path, origin, origin_pki):  # noqa: F811
    gateway = _gateway(tmp_path, origin, origin_pki, limit=5)
    held: list[socket.socket] = []
    try:
        held += [_passthrough(gateway, origin_pki.ca, f"/held-{i}") for i in range(5)]
        time.sleep(0.3)  # mitmproxy has ended its side of each: only the relays hold them now
        extra = socket.create_connection(("127.0.0.1", gateway.port), timeout=5, source_address=(GUEST, 0))
        with extra:
            extra.sendall(b"CONNECT allowed.test:443 HTTP/1.1\r\nHost: allowed.test:443\r\n\r\n")
            try:
                answer = read_head(extra)
            except ConnectionResetError:
                answer = b""
            assert answer == b"", answer  # the sixth is closed unanswered
        for sock in held[:2]:
            sock.close()
        del held[:2]
        deadline = time.monotonic() + 5
        while True:  # the relays see the closes on the gateway's next loop turns
            try:
                held.append(_passthrough(gateway, origin_pki.ca, "/after"))
                break
            except (AssertionError, OSError):
                assert time.monotonic() < deadline, "closing relayed connections made no room"
                time.sleep(0.1)
    finally:
        for sock in held:
            sock.close()
        assert gateway.stop() == 0, gateway.output()


class _Listener:
    """A service on the gateway's own address that the policy does not open: must see no connection."""

    def __init__(self) -> None:
        self.port = free_port()
        self.accepted = 0
        self._sock = socket.create_server(("127.0.0.1", self.port))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


@pytest.mark.parametrize("target", ["localhost", "127.0.0.1"])
def test_a_passthrough_to_the_gateway_itself_reaches_nothing(tmp_path, origin, origin_pki, target):  # noqa: F811
    """`localhost` is decided as a name and passed through: the relay's upstream check refuses it (the
    gateway's own address); the address itself is refused at the ClientHello."""
    gateway = _gateway(tmp_path, origin, origin_pki, redirect=False)  # no test redirect: real resolution
    service = _Listener()
    try:
        raw = _tunnel(gateway, f"{target}:{service.port}")
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with pytest.raises((ssl.SSLError, OSError)):
            context.wrap_socket(raw, server_hostname="localhost").close()
        raw.close()
        time.sleep(0.3)
        assert service.accepted == 0
    finally:
        service.close()
        assert gateway.stop() == 0, gateway.output()
