"""End to end: a real `classgate run` process, a real origin, real clients (curl) from several addresses.

Groups in the test policy: teachers 127.0.0.2, students 127.0.0.3 (both trust the school CA),
guests 127.0.0.4 (no CA: never intercepted), anyone else (127.0.0.1) is "default" (not inspected).
The clock is pinned to Monday 2026-11-23 09:00 (class hours) with CLASSGATE_TEST_NOW.
"""

from __future__ import annotations

import socket
import ssl
import time
import urllib.request
from pathlib import Path

import pytest

from tests.proxy.proxytest_support import GUEST, STUDENT, TEACHER, UNKNOWN, curl, peer_certificate_issuer

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("client", "url", "status", "expect"),
    [
        (TEACHER, "http://allowed.test/page", 200, '"host": "allowed.test"'),
        (STUDENT, "http://blocked.test/", 403, "Cờ bạc"),  # category
        (STUDENT, "http://video.test/shorts/x1", 403, "no-shorts"),  # path rule
        (STUDENT, "http://video.test/watch?v=1", 200, '"path": "/watch?v=1"'),
        (STUDENT, "http://social.test/", 403, "focus-in-class"),  # schedule: class hours
        (TEACHER, "http://social.test/", 200, '"host": "social.test"'),  # teachers are not in that rule
        (UNKNOWN, "http://blocked.test/x", 403, "Trang này đã bị chặn"),
        (GUEST, "http://allowed.test/", 200, '"origin": "ok"'),
    ],
)
def test_http(proxy, client, url, status, expect):
    r = curl(proxy.url, url, source=client)
    assert r.returncode == 0, r.stderr
    assert r.status == status
    assert expect in r.text


@pytest.mark.parametrize(
    ("client", "url", "status", "expect"),
    [
        (TEACHER, "https://allowed.test/secure", 200, '"scheme": "https"'),
        (STUDENT, "https://blocked.test/", 403, "Cờ bạc"),  # blocked by SNI, shown via interception
        (STUDENT, "https://video.test/shorts/abc", 403, "no-shorts"),  # a path rule inside TLS
        (STUDENT, "https://video.test/watch", 200, '"path": "/watch"'),
    ],
)
def test_https_intercepted_with_school_ca(proxy, client, url, status, expect):
    r = curl(proxy.url, url, source=client, cacert=proxy.school_ca)
    assert r.returncode == 0, r.stderr
    assert r.status == status
    assert expect in r.text


@pytest.mark.parametrize(
    ("client", "host"),
    [
        (TEACHER, "bank.test"),  # never_decrypt category, even for an inspected group
        (GUEST, "allowed.test"),  # group without the school CA
        (UNKNOWN, "allowed.test"),
    ],
)
def test_passthrough_client_sees_the_origin_certificate(proxy, origin_pki, client, host):
    assert peer_certificate_issuer(proxy.port, client, host, origin_pki.ca) == "classgate test origin CA"
    r = curl(proxy.url, f"https://{host}/p", source=client, cacert=origin_pki.ca)
    assert r.status == 200 and f'"host": "{host}"' in r.text


def test_intercepted_client_sees_the_school_ca(proxy):
    assert peer_certificate_issuer(proxy.port, TEACHER, "allowed.test", proxy.school_ca) == "classgate school CA"


@pytest.mark.parametrize("client", [GUEST, UNKNOWN])
def test_blocked_sni_for_non_inspected_group_is_refused(proxy, origin_pki, client):
    # Regular mode: the CONNECT itself is refused with 403, no TLS is attempted.
    r = curl(proxy.url, "https://blocked.test/", source=client, cacert=origin_pki.ca)
    assert r.returncode != 0
    assert "403" in r.stderr or "CONNECT" in r.stderr


def test_blocked_sni_behind_an_allowed_connect_is_refused(proxy, origin_pki):
    # CONNECT to an allowed name, then a ClientHello naming a blocked one: the TLS gate refuses.
    sock = socket.create_connection(("127.0.0.1", proxy.port), source_address=(GUEST, 0), timeout=10)
    sock.sendall(b"CONNECT allowed.test:443 HTTP/1.1\r\nHost: allowed.test:443\r\n\r\n")
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    ctx = ssl.create_default_context(cafile=str(origin_pki.ca))
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)), \
            ctx.wrap_socket(sock, server_hostname="blocked.test") as tls:
        tls.sendall(b"GET / HTTP/1.1\r\nHost: blocked.test\r\n\r\n")
        assert tls.recv(100) == b""  # if the handshake "worked", nothing may come back
        raise ConnectionError("closed")


def _raw_tunnel_reply(proxy_port: int, source: str, host: str, port: int, payload: bytes) -> bytes:
    """CONNECT through the proxy, send bytes that are neither TLS nor HTTP, return all that comes back."""
    sock = socket.create_connection(("127.0.0.1", proxy_port), source_address=(source, 0), timeout=5)
    with sock:
        sock.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        sock.sendall(payload)
        reply = b""
        try:
            while chunk := sock.recv(4096):
                reply += chunk
        except (ConnectionError, TimeoutError):
            pass
        return reply


@pytest.mark.parametrize(
    ("host", "reaches_the_server"),
    [
        ("allowed.test", True),  # the origin answers the junk itself
        ("blocked.test", False),  # cut before a byte reaches the blocked server
    ],
)
def test_raw_tcp_tunnel_from_an_inspected_device_is_decided(proxy, origin, host, reaches_the_server):
    # Inspected devices' CONNECTs wait for a ClientHello to decide; a tunnel that never sends one
    # must still be decided, or any protocol but TLS would reach a blocked host.
    reply = _raw_tunnel_reply(proxy.port, STUDENT, host, 22, b"SSH-2.0-OpenSSH_9.2\r\n")
    assert (b"400" in reply) is reaches_the_server, reply


def test_https_without_school_ca_fails_verification(proxy):
    # A device that does not trust the school CA cannot be fooled into a valid-looking session.
    r = curl(proxy.url, "https://allowed.test/", source=TEACHER)
    assert r.returncode != 0 and r.status == 0


@pytest.mark.parametrize(
    ("url", "headers", "host", "check"),
    [
        ("https://www.google.com/search?q=cats&safe=off", {}, "www.google.com",
         lambda s: "safe=active" in s.path and "safe=off" not in s.path),
        ("https://www.google.com.vn/search?q=meo", {}, "www.google.com.vn", lambda s: "safe=active" in s.path),
        ("https://www.bing.com/search?q=cats", {}, "www.bing.com", lambda s: "adlt=strict" in s.path),
        ("https://duckduckgo.com/?q=cats&kp=-2", {}, "duckduckgo.com", lambda s: "kp=1" in s.path),
        ("https://www.youtube.com/results?search_query=x", {"YouTube-Restrict": "Off"}, "www.youtube.com",
         lambda s: s.headers.get("youtube-restrict") == "Strict"),
    ],
)
def test_safesearch_rewrite_reaches_the_origin(proxy, origin, url, headers, host, check):
    before = len(origin.find(host))
    r = curl(proxy.url, url, source=STUDENT, cacert=proxy.school_ca, headers=headers)
    assert r.status == 200, r.stderr
    arrived = origin.find(host)[before:]
    assert len(arrived) == 1
    assert check(arrived[0]), arrived[0]


def test_ca_page_and_download(proxy):
    r = curl(proxy.url, "http://classgate.ca/", source=GUEST)
    assert r.status == 200 and "Cài chứng chỉ" in r.text
    for os_name in ("Windows", "macOS", "Android", "iOS", "ChromeOS"):
        assert os_name in r.text
    en = curl(proxy.url, "http://classgate.ca/?lang=en", source=GUEST)
    assert "Install the school" in en.text
    pem = curl(proxy.url, "http://classgate.ca/classgate-ca.pem", source=GUEST)
    assert pem.body.strip() == proxy.school_ca.read_bytes().strip()
    onboarding = curl(proxy.url, "http://mitm.it/", source=GUEST)
    assert "mitmproxy" not in onboarding.text.lower()  # mitmproxy's own onboarding app is off


@pytest.mark.parametrize(
    ("raw", "expect_status"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", b"400"),  # origin-form with no Host: destination unknown
        (b"GET http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n",
         None),
        (b"\x16\x03\x01\x00\x05hello garbage that is not http\r\n\r\n", None),
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"GET http://blocked.test/ HTTP/1.1\r\nHost: blocked.test\r\nContent-Length: abc\r\n\r\n", None),
    ],
)
def test_malformed_requests_never_pass(proxy, origin, raw, expect_status):
    before = len(origin.seen)
    sock = socket.create_connection(("127.0.0.1", proxy.port), source_address=(STUDENT, 0), timeout=10)
    try:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    except (ConnectionResetError, BrokenPipeError):
        reply = b""
    finally:
        sock.close()
    assert not reply.startswith(b"HTTP/1.1 200")
    if expect_status:
        assert reply.split(b" ", 2)[1] == expect_status, reply[:200]
    assert len(origin.seen) == before  # nothing reached the origin


CLOSE_WAIT = "08"  # the TCP state in /proc/net/tcp of a socket whose peer closed and that has not closed yet


def _close_wait_sockets(port: int) -> int:
    """The gateway's sockets on its proxy port still open after their client closed its side."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for row in rows if (f := row.split()) and int(f[1].rsplit(":", 1)[1], 16) == port
               and f[3] == CLOSE_WAIT)


@pytest.mark.parametrize(
    ("raw", "answers"),
    [
        # What may come back before the close: nothing, or these. mitmproxy drops a request whose client
        # half-closed before the answer (an aborted request), so a request may go unanswered; never a 200
        # for a blocked one.
        (b"", ()),  # connected and half-closed at once
        (b"\x16\x03\x01\x00\x05hello junk", ()),  # a broken ClientHello to the proxy port itself
        (b"GARBAGE\r\n\r\n", (b"HTTP/1.1 400",)),
        (b"GET http://blocked.test/ HTTP/1.1\r\nHost: blocked.test\r\n\r\n", (b"HTTP/1.1 403",)),
        (b"GET http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n", (b"HTTP/1.1 200",)),
        (b"CONNECT blocked.test:443 HTTP/1.1\r\nHost: blocked.test:443\r\n\r\n", (b"HTTP/1.1 200",)),
    ],
    ids=["empty", "tls-junk", "garbage", "blocked", "allowed", "connect-blocked"],
)
def test_a_half_closed_connection_is_closed(proxy, raw, answers):
    """A client that sends its bytes and then shuts its side (FIN) must see the gateway close too: a
    socket left open would be a descriptor a script could take from the gateway in a loop. (mitmproxy left
    such sockets open on Python 3.12+ when it closed the connection while reading the FIN: SocketCloser.)"""
    for _ in range(10):  # bounded: the leak did not show on every connection
        sock = socket.create_connection(("127.0.0.1", proxy.port), source_address=(STUDENT, 0), timeout=5)
        try:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
            reply = b""
            while chunk := sock.recv(65536):  # TimeoutError here: the gateway never closed its side
                reply += chunk
        finally:
            sock.close()
        assert reply == b"" or reply.startswith(answers), reply[:200]
    deadline = time.monotonic() + 5
    while (left := _close_wait_sockets(proxy.port)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == 0, f"{left} sockets left open by the gateway after their client closed"


def test_metrics_count_what_happened(proxy):
    curl(proxy.url, "http://blocked.test/m", source=STUDENT)
    with urllib.request.urlopen(f"http://127.0.0.1:{proxy.metrics_port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    line = [l for l in text.splitlines()
            if l.startswith("classgate_requests_total{") and 'category="gambling"' in l and 'action="block"' in l]
    assert line and float(line[0].rsplit(" ", 1)[1]) >= 1
    assert 'classgate_tls_connections_total{mode="passthrough"}' in text
    for ip in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
        assert ip not in text  # never a client address in metrics


def test_log_has_refs_but_no_client_addresses(proxy):
    r = curl(proxy.url, "http://blocked.test/secret-path?who=me", source=STUDENT)
    ref = r.text.split('class="ref">', 1)[1].split("<", 1)[0]
    log = proxy.output()
    assert f"ref={ref}" in log
    assert "secret-path" not in log  # full URLs only at DEBUG
    for ip in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
        assert ip not in log


def test_a_broken_engine_blocks_in_the_real_proxy(tmp_path, origin, origin_pki):
    from tests.proxy.proxytest_support import HERE, TEST_POLICY, ProxyProcess

    policy = tmp_path / "policy.yaml"
    policy.write_text(TEST_POLICY, encoding="utf-8")
    p = ProxyProcess(policy, tmp_path / "state", origin, origin_pki.ca,
                     extra=["--set", f"scripts={HERE / 'proxytest_break_engine.py'}"], tracebacks_expected=True)
    try:
        before = len(origin.seen)
        r = curl(p.url, "http://allowed.test/", source=TEACHER)
        assert r.status == 403 and "Bộ lọc tạm thời gặp lỗi" in r.text
        https = curl(p.url, "https://allowed.test/", source=TEACHER, cacert=p.school_ca)
        assert https.status != 200  # refused at the ClientHello: never passed through
        guest = curl(p.url, "https://allowed.test/", source=GUEST, cacert=origin_pki.ca)
        assert guest.status != 200 and guest.returncode != 0
        assert len(origin.seen) == before  # nothing reached the origin
        log = p.output()
        assert log.count("filter error at request stage") == 1  # logged once per cause
    finally:
        p.stop()


@pytest.mark.parametrize(("host", "reaches_origin"), [("blocked.test", False), ("allowed.test", True)])
def test_large_upload_is_decided_before_it_streams(proxy, origin, tmp_path, host, reaches_origin):
    # 6 MB is above stream_large_bodies (4 MB): mitmproxy streams it, so the decision must come first.
    body = tmp_path / "upload.bin"
    body.write_bytes(b"u" * (6 * 1024 * 1024))
    before = len(origin.find(host))
    r = curl(proxy.url, f"http://{host}/upload", source=STUDENT,
             extra=["--data-binary", f"@{body}", "-H", "Content-Type: application/octet-stream"])
    arrived = origin.find(host)[before:]
    if reaches_origin:
        assert r.status == 200 and len(arrived) == 1
    else:
        assert r.status != 200 and not arrived
