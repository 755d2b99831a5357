"""A real origin on 127.0.0.50 (HTTP and HTTPS) that records what arrived, for end-to-end tests.

Not on 127.0.0.1: the gateway refuses every destination on itself (the proxy, its metrics), and the test
policies open only this address (`local_services`), which stands for the Internet."""

from __future__ import annotations

import json
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ORIGIN_IP = "127.0.0.50"


@dataclass
class Seen:
    scheme: str
    host: str
    path: str
    headers: dict[str, str]


@dataclass
class Origin:
    http_port: int = 0
    https_port: int = 0
    seen: list[Seen] = field(default_factory=list)
    _servers: list[ThreadingHTTPServer] = field(default_factory=list)

    def find(self, host: str, path_prefix: str = "/") -> list[Seen]:
        return [s for s in self.seen if s.host == host and s.path.startswith(path_prefix)]

    def close(self) -> None:
        for s in self._servers:
            s.shutdown()
            s.server_close()


def _handler(origin: Origin, scheme: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            host = (self.headers.get("Host") or "").split(":")[0]
            origin.seen.append(Seen(scheme, host, self.path, {k.lower(): v for k, v in self.headers.items()}))
            body = json.dumps({"origin": "ok", "scheme": scheme, "host": host, "path": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_HEAD = _answer

        def log_message(self, *args) -> None:  # quiet
            pass

    return Handler


def start_origin(cert: Path, key: Path) -> Origin:
    origin = Origin()
    http_server = ThreadingHTTPServer((ORIGIN_IP, 0), _handler(origin, "http"))
    https_server = ThreadingHTTPServer((ORIGIN_IP, 0), _handler(origin, "https"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    https_server.socket = context.wrap_socket(https_server.socket, server_side=True)
    for server in (http_server, https_server):
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        origin._servers.append(server)
    origin.http_port = http_server.server_address[1]
    origin.https_port = https_server.server_address[1]
    return origin
