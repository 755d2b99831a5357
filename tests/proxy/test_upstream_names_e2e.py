"""Upstream connections to names, resolved by the system resolver as on a gateway (no test redirect script).

Every other end-to-end test sends upstream connections to its origins with a test script that rewrites the
destination before classgate sees it, so the UpstreamGuard's path for names (resolve, check, pin to the
checked address, give the connection its name back) ran only here: `localhost`, which the hosts file
resolves to 127.0.0.1, where a recording origin listens (opened to devices by `local_services`).

The gateway runs with mitmproxy's proxy_debug log (client addresses and layers: a test's log only), which
shows the layers each connection got."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import pytest

from tests.proxy.proxytest_certs import make_origin_pki
from tests.proxy.proxytest_support import GUEST, TEACHER, ProxyProcess
from tests.proxy.redteam_origins import RecordingOrigin, start_origins

LOOPBACK = "127.0.0.1"


def _localhost_is_loopback() -> bool:
    try:
        return {info[4][0] for info in socket.getaddrinfo("localhost", 80, socket.AF_INET)} == {LOOPBACK}
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _localhost_is_loopback(),
                                reason="this machine's resolver does not answer localhost with 127.0.0.1 only")


@dataclass
class Names:
    proxy: ProxyProcess
    origin: RecordingOrigin
    origin_ca: str


@pytest.fixture(scope="module")
def names(tmp_path_factory) -> Iterator[Names]:
    d = tmp_path_factory.mktemp("names")
    ca, cert, key = make_origin_pki(d / "pki", ["localhost"], ips=(LOOPBACK,))
    origin = start_origins([LOOPBACK], cert, key)[LOOPBACK]
    policy = d / "policy.yaml"
    policy.write_text(f"""\
classgate: 1
name: upstream-names
groups:
  teachers: {{networks: [{TEACHER}/32]}}
  guests:   {{networks: [{GUEST}/32]}}
default: allow
tls: {{inspect_groups: [teachers]}}
# The recording origin's two ports on 127.0.0.1 stand for the Internet; the rest of the gateway stays closed.
local_services: ["{LOOPBACK}:{origin.http_port}", "{LOOPBACK}:{origin.https_port}"]
""", encoding="utf-8")
    proxy = ProxyProcess(policy, d / "state", None, ca, redirect=False,
                         extra=["--set", "proxy_debug=true", "--set", "termlog_verbosity=debug"])
    yield Names(proxy, origin, str(ca))
    proxy.stop()
    origin.close()


def _read_response(reader: BinaryIO) -> tuple[int, bytes]:
    """One HTTP/1.1 response with a Content-Length from a keep-alive connection: status and body."""
    status = int(reader.readline(1024).split()[1])
    length = 0
    for _ in range(100):  # bounded: the origin sends a handful of headers
        line = reader.readline(8192).strip()
        if not line:
            break
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    return status, reader.read(length)


def _assert_quiet_log(proxy: ProxyProcess) -> None:
    log = proxy.output()
    assert "Traceback" not in log and "failed in" not in log, log[-3000:]


def test_http_keepalive_to_a_name_reuses_one_upstream_connection(names: Names) -> None:
    names.origin.clear()
    client = http.client.HTTPConnection(LOOPBACK, names.proxy.port, timeout=10, source_address=(TEACHER, 0))
    try:
        for path in ("/one", "/two", "/three"):
            client.request("GET", f"http://localhost:{names.origin.http_port}{path}")
            response = client.getresponse()
            assert response.status == 200, response.read()
            response.read()
    finally:
        client.close()
    assert [r.request_line.split()[1] for r in names.origin.requests] == ["/one", "/two", "/three"]
    assert names.origin.connections == [("http", None)], names.origin.seen()  # one connection for the three
    _assert_quiet_log(names.proxy)


@pytest.mark.parametrize(("client", "inspected"), [(TEACHER, True), (GUEST, False)])
def test_https_to_a_name_reaches_it_under_its_name(names: Names, client: str, inspected: bool) -> None:
    """Intercepted (teacher) and passed through (guest, not inspected): the origin sees SNI localhost."""
    names.origin.clear()
    port = names.origin.https_port
    with _tunnel(names, client, port) as raw:
        client_port = raw.getsockname()[1]
        context = ssl.create_default_context(
            cafile=str(names.proxy.school_ca) if inspected else names.origin_ca)
        with context.wrap_socket(raw, server_hostname="localhost") as tls, tls.makefile("rb") as reader:
            for path in ("/a", "/b"):
                tls.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n".encode())
                status, body = _read_response(reader)
                assert status == 200, body[:300]
            issuer = dict(x[0] for x in tls.getpeercert()["issuer"])
    assert ("test origin" not in str(issuer)) is inspected, issuer  # the school CA signs what is intercepted
    assert names.origin.connections == [("https", "localhost")], names.origin.seen()
    assert [r.request_line.split()[1] for r in names.origin.requests] == ["/a", "/b"]
    # A passthrough is decided before any TLS layer and handed out of mitmproxy (proxy/addons/passthrough_splice.py).
    assert _layers_of(names.proxy, client, client_port) == (
        ["HttpLayer", "ServerTLSLayer", "HttpLayer"] if inspected else ["HttpLayer", "HandOff"])
    _assert_quiet_log(names.proxy)


@pytest.mark.parametrize("first_bytes", [5, 60, 300])
def test_a_clienthello_in_two_pieces_is_waited_for_then_relayed(names: Names, first_bytes: int) -> None:
    """The layer decision waits for the whole ClientHello (a post-quantum one spans two TCP segments)."""
    names.origin.clear()
    port = names.origin.https_port
    with _tunnel(names, GUEST, port) as raw:
        client_port = raw.getsockname()[1]
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ssl.create_default_context(cafile=names.origin_ca).wrap_bio(incoming, outgoing,
                                                                         server_hostname="localhost")
        with pytest.raises(ssl.SSLWantReadError):
            tls.do_handshake()
        hello = outgoing.read()
        raw.sendall(hello[:first_bytes])
        time.sleep(0.3)  # the gateway reads the first piece alone
        raw.sendall(hello[first_bytes:])
        for _ in range(20):  # a TLS 1.3 handshake is one or two round trips
            chunk = raw.recv(65536)
            assert chunk, "the gateway closed the connection during the handshake"
            incoming.write(chunk)
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                raw.sendall(outgoing.read())
        raw.sendall(outgoing.read())
        tls.write(f"GET /split HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n".encode())
        raw.sendall(outgoing.read())
        answer = b""
        for _ in range(20):  # until the body (the origin echoes the path) or the end
            chunk = raw.recv(65536)
            if not chunk:
                break
            incoming.write(chunk)
            try:
                while piece := tls.read(65536):
                    answer += piece
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                pass
            if b"/split" in answer:
                break
    assert answer.startswith(b"HTTP/1.1 200") and b"/split" in answer, answer[:300]
    assert names.origin.connections == [("https", "localhost")], names.origin.seen()
    assert _layers_of(names.proxy, GUEST, client_port) == ["HttpLayer", "HandOff"]
    _assert_quiet_log(names.proxy)


def _tunnel(names: Names, client: str, port: int) -> socket.socket:
    """A CONNECT tunnel through the gateway to localhost:port, from the client address."""
    raw = socket.create_connection((LOOPBACK, names.proxy.port), timeout=10, source_address=(client, 0))
    raw.sendall(f"CONNECT localhost:{port} HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n".encode())
    assert raw.recv(4096).startswith(b"HTTP/1.1 200")
    return raw


def _layers_of(proxy: ProxyProcess, client: str, port: int) -> list[str]:
    """The layers mitmproxy chose for one client connection, from its proxy_debug lines."""
    marker = f"[{client}:{port}]"
    return [line.split("[nextlayer]", 1)[1].split()[0].split("(")[0]
            for line in proxy.output().splitlines() if marker in line and "[nextlayer]" in line]
