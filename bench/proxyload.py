"""Load generation for bench_proxy.py: a fast asyncio origin (HTTP + HTTPS) and an asyncio client
that speaks to an HTTP proxy (absolute-form HTTP, CONNECT + TLS), with per-request latencies.

Bounded: every run stops after `seconds`. Everything is on 127.0.0.0/8.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

BODY = b"x" * 2048
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
)
BULK_BYTES = 1024 * 1024  # GET /bulk: a download, where a relay's cost is per chunk, not per connection
BULK_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: "
    + str(BULK_BYTES).encode() + b"\r\n\r\n" + b"z" * BULK_BYTES
)


def make_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for the origin (the proxies run with ssl_insecure: same cost for both)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench origin")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("bench.test")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "origin-cert.pem", directory / "origin-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def _serve_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            # Requests carry no body in this benchmark.
            writer.write(BULK_RESPONSE if head.startswith(b"GET /bulk ") else RESPONSE)
            if b"connection: close" in head.lower():
                break
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def run_origin(http_port_file: Path, cert: Path, key: Path) -> None:
    """Serve forever; writes 'HTTP TLS TLS2' ports to `http_port_file` once listening (TLS2: the
    port the bare mitmdump is told to pass through, so both proxies have a passthrough case)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    plain = await asyncio.start_server(_serve_client, "127.0.0.1", 0, backlog=1024)
    tls = await asyncio.start_server(_serve_client, "127.0.0.1", 0, ssl=ctx, backlog=1024)
    tls2 = await asyncio.start_server(_serve_client, "127.0.0.1", 0, ssl=ctx, backlog=1024)
    ports = " ".join(str(s.sockets[0].getsockname()[1]) for s in (plain, tls, tls2))
    http_port_file.write_text(ports)
    await asyncio.Event().wait()


@dataclass
class Result:
    ok: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    first_error: str = ""

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        s = sorted(self.latencies)
        return s[min(len(s) - 1, int(q * len(s)))] * 1000


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


def _client_tls() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the benchmark measures the proxy, not certificate checks
    return ctx


async def _connect(proxy_port: int, source: str, origin_port: int, sni: str, tls: ssl.SSLContext):
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port, local_addr=(source, 0))
    writer.write(f"CONNECT 127.0.0.1:{origin_port} HTTP/1.1\r\nHost: 127.0.0.1:{origin_port}\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        writer.close()
        raise ConnectionError(f"CONNECT refused: {head[:40]!r}")
    await writer.start_tls(tls, server_hostname=sni)
    return reader, writer


async def load(mode: str, proxy_port: int, origin_ports: tuple[int, int], hosts: list[str], source: str,
               concurrency: int, seconds: float, on_ready=None) -> Result:
    """mode: http-keepalive | https-keepalive | https-newconn (each request on a new connection) | https-bulk
    (https-keepalive, each request a BULK_BYTES download).

    Keep-alive modes open their connections first (one request each, not counted), then call
    `on_ready()` and start the clock: the measured slice holds requests only, no handshakes."""
    http_port, https_port = origin_ports
    result = Result()
    tls = _client_tls()
    stop = float("inf")
    counter = iter(range(10**9))
    path = "/bulk" if mode == "https-bulk" else "/p"
    keepalive = ("http-keepalive", "https-keepalive", "https-bulk")
    ready = asyncio.Event()
    pending = [concurrency]

    async def opened() -> None:
        pending[0] -= 1
        if pending[0] == 0:
            ready.set()
        await ready.wait()

    async def worker() -> None:
        reader = writer = None
        conn_host = ""
        if mode in keepalive:
            host = hosts[next(counter) % len(hosts)]
            try:
                if mode == "http-keepalive":
                    reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port, local_addr=(source, 0))
                    writer.write(f"GET http://127.0.0.1:{http_port}/p HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                else:
                    reader, writer = await _connect(proxy_port, source, https_port, host, tls)
                    conn_host = host
                    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                await _read_response(reader)
            except Exception as e:  # noqa: BLE001 - counted, the run goes on
                result.errors += 1
                result.first_error = result.first_error or f"setup: {type(e).__name__}: {e}"
                reader = writer = None
        await opened()
        while time.perf_counter() < stop:
            host = hosts[next(counter) % len(hosts)]
            started = time.perf_counter()
            try:
                if mode == "http-keepalive":
                    if writer is None:
                        reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port, local_addr=(source, 0))
                    writer.write(f"GET http://127.0.0.1:{http_port}/p HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                elif mode in keepalive:
                    if writer is None:
                        reader, writer = await _connect(proxy_port, source, https_port, host, tls)
                        conn_host = host  # the SNI: requests on this connection name the same host
                    writer.write(f"GET {path} HTTP/1.1\r\nHost: {conn_host}\r\n\r\n".encode())
                else:
                    reader, writer = await _connect(proxy_port, source, https_port, host, tls)
                    writer.write(f"GET /p HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
                status = await _read_response(reader)
                result.latencies.append(time.perf_counter() - started)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if status == 200:
                    result.ok += 1
                else:
                    result.errors += 1
                if mode == "https-newconn":
                    writer.close()
                    reader = writer = None
            except Exception as e:  # noqa: BLE001 - counted, the run goes on
                result.errors += 1
                result.first_error = result.first_error or f"{type(e).__name__}: {e}"
                if writer is not None:
                    writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    async def clock() -> float:
        nonlocal stop
        await ready.wait()
        if on_ready is not None:
            on_ready()
        began = time.perf_counter()
        stop = began + seconds
        return began

    clock_task = asyncio.ensure_future(clock())
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - await clock_task
    return result
