"""Origins for the red-team suite: one real HTTP and HTTPS server per 127.0.0.x address, recording every
connection it accepted and every request it read, so a case can prove that nothing reached a blocked one."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Request:
    scheme: str
    request_line: str  # as the origin read it: method, target and version
    host: str  # the Host header
    headers: dict[str, str]
    body: bytes


@dataclass
class RecordingOrigin:
    ip: str
    http_port: int = 0
    https_port: int = 0
    connections: list[tuple[str, str | None]] = field(default_factory=list)  # (scheme, SNI for https)
    requests: list[Request] = field(default_factory=list)
    _servers: list[ThreadingHTTPServer] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reached(self) -> bool:
        """True when anything at all arrived here (a TCP connection is enough)."""
        with self._lock:
            return bool(self.connections or self.requests)

    def clear(self) -> None:
        with self._lock:
            self.connections.clear()
            self.requests.clear()

    def seen(self) -> str:
        with self._lock:
            return json.dumps({"connections": self.connections,
                               "requests": [r.request_line for r in self.requests]})

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()


def _handler(origin: RecordingOrigin, scheme: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, 1 << 20)) if length else b""
            with origin._lock:
                origin.requests.append(Request(scheme, self.requestline, self.headers.get("Host") or "",
                                               {k.lower(): v for k, v in self.headers.items()}, body))
            reply = json.dumps({"origin": origin.ip, "line": self.requestline}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_GET = do_POST = do_HEAD = do_PUT = _answer

        def log_message(self, *args: object) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, origin: RecordingOrigin, scheme: str, chain: tuple[Path, Path] | None) -> None:
        self.origin, self.scheme, self.chain = origin, scheme, chain
        super().__init__((origin.ip, 0), _handler(origin, scheme))

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        sock, address = self.socket.accept()
        sni: list[str | None] = [None]
        if self.chain is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.chain)
            context.sni_callback = lambda _s, name, _c: sni.__setitem__(0, name)  # type: ignore[func-returns-value]
            sock.settimeout(10)
            try:
                sock = context.wrap_socket(sock, server_side=True)
            finally:
                with self.origin._lock:
                    self.origin.connections.append((self.scheme, sni[0]))
        else:
            with self.origin._lock:
                self.origin.connections.append((self.scheme, None))
        return sock, address

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a refused or half-open handshake is what some cases send on purpose


def start_origins(ips: list[str], cert: Path, key: Path) -> dict[str, RecordingOrigin]:
    origins: dict[str, RecordingOrigin] = {}
    for ip in ips:
        origin = RecordingOrigin(ip)
        http_server = _Server(origin, "http", None)
        https_server = _Server(origin, "https", (cert, key))
        for server in (http_server, https_server):
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
            origin._servers.append(server)
        origin.http_port = http_server.server_address[1]
        origin.https_port = https_server.server_address[1]
        origins[ip] = origin
    return origins
