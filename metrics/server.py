"""The metrics endpoint: `/metrics` (Prometheus) and `/stats.json` (top sites), on its own thread.

Bound to 127.0.0.1 unless the admin names another address: exposing it on the LAN is a choice.
Request lines are never logged (the default handler writes the client address to stderr).
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from classgate.metrics.topsites import TopSites

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9741
MAX_TOP = 100


class TopSitesView(Protocol):
    def snapshot(self, n: int = 20) -> dict[str, object]: ...


class Served(Protocol):
    """What the endpoint serves: one process's `Metrics`, or a gateway's workers merged (metrics/merge.py)."""

    @property
    def registry(self) -> CollectorRegistry: ...

    @property
    def topsites(self) -> TopSitesView: ...

    @property
    def timezone(self) -> str: ...


class MetricsServer:
    """A running endpoint; `close()` stops it and frees the port."""

    def __init__(self, httpd: ThreadingHTTPServer):
        self._httpd = httpd
        self._stopping = threading.Event()
        self.host, self.port = str(httpd.server_address[0]), int(httpd.server_address[1])
        self._thread = threading.Thread(target=self._serve, name="classgate-metrics", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _serve(self) -> None:
        # Blocks in accept() until a request comes, instead of serve_forever()'s polling: an idle
        # thread that wakes up several times a second takes the GIL from the proxy each time.
        while not self._stopping.is_set():
            self._httpd.handle_request()

    def close(self) -> None:
        self._stopping.set()
        try:  # wake the accept() up; the loop then sees the flag
            wake = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(str(self.host), str(self.host))
            socket.create_connection((wake, self.port), timeout=2).close()
        except OSError:
            pass
        self._thread.join(timeout=5)
        self._httpd.server_close()


def start(metrics: Served, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> MetricsServer:
    """Serve `metrics` on host:port (port 0 picks a free one; see `.port`). Raises OSError if it cannot bind."""
    handler = type("Handler", (_Handler,), {"metrics": metrics})
    server_class = _IPv6Server if ":" in host else _Server
    return MetricsServer(server_class((host, port), handler))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The proxy restarting must get its port back at once, not after TIME_WAIT.
    allow_reuse_address = True


class _IPv6Server(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    metrics: Served
    server_version = "classgate-metrics"
    sys_version = ""
    # Buffered, so headers and body go out in one write (no Nagle / delayed-ACK stall per scrape).
    wbufsize = -1

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            self._send(200, content_type, encoder(self.metrics.registry))
        elif url.path == "/stats.json":
            n = _top_n(parse_qs(url.query).get("n", ["20"])[0])
            if n is None:
                self._send(400, "text/plain; charset=utf-8", b"n must be an integer from 1 to 100\n")
                return
            doc = {**self.metrics.topsites.snapshot(n), "timezone": self.metrics.timezone}
            body = json.dumps(doc, ensure_ascii=False, indent=1)
            self._send(200, "application/json", body.encode())
        elif url.path == "/topsites-export.json" and isinstance(topsites := self.metrics.topsites, TopSites) \
                and topsites.shared:
            # A worker's counters with their keyed client hashes, for its supervisor's merge (metrics/merge.py).
            # Only a worker of a supervisor has the shared key, and it listens on loopback only.
            body = json.dumps({**topsites.export(), "timezone": self.metrics.timezone})
            self._send(200, "application/json", body.encode())
        elif url.path == "/":
            self._send(200, "text/plain; charset=utf-8", b"classgate metrics: /metrics /stats.json\n")
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # privacy: the default writes "<client address> - - [date] GET ..." to stderr


def _top_n(text: str) -> int | None:
    try:
        n = int(text)
    except ValueError:
        return None
    return n if 1 <= n <= MAX_TOP else None
