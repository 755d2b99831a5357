"""Test servers for the transparent-mode test, run inside a namespace: `python origin_server.py ROLE LOG`.

role "origin" (the Internet side): HTTP on :80 and HTTPS on :443 that answer with their own name and
the Host header, a UDP listener on :443 (what QUIC would reach) and :53, a TCP listener on :853
(DNS over TLS). role "gateway": a UDP listener on :53 standing in for the school resolver.

Every request, TLS handshake (SNI) and datagram is appended to LOG as one line, so the test can
say not only what the client saw but also what reached the far side. Prints "ready" once bound.
"""

from __future__ import annotations

import socket
import socketserver
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class DualStackHTTPServer(ThreadingHTTPServer):
    """Listens on every IPv6 and IPv4 address (an IPv6 socket that also accepts IPv4)."""

    address_family = socket.AF_INET6

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


from pathlib import Path

_lock = threading.Lock()


def record(log: Path, line: str) -> None:
    with _lock, log.open("a") as f:
        f.write(line + "\n")


def http_handler(name: str, log: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            host = self.headers.get("Host", "")
            record(log, f"{name} GET {host}{self.path}")
            body = f"hello from the {name} origin, host={host}\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def udp_handler(name: str, log: Path) -> type[socketserver.BaseRequestHandler]:
    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            data, sock = self.request
            record(log, f"{name} UDP {self.server.server_address[1]} {data[:40]!r}")
            sock.sendto(f"answer from {name}".encode(), self.client_address)

    return Handler


def serve(server: socketserver.BaseServer) -> None:
    threading.Thread(target=server.serve_forever, daemon=True).start()


def main(role: str, log: Path, cert: Path | None) -> None:
    if role == "gateway":
        serve(socketserver.ThreadingUDPServer(("0.0.0.0", 53), udp_handler("gateway", log)))
    else:
        serve(DualStackHTTPServer(("::", 80), http_handler("http", log)))
        https = DualStackHTTPServer(("::", 443), http_handler("https", log))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert)

        def on_sni(sslsock: ssl.SSLObject, server_name: str | None, ctx: ssl.SSLContext) -> None:
            record(log, f"tls SNI {server_name}")

        context.sni_callback = on_sni
        https.socket = context.wrap_socket(https.socket, server_side=True)
        serve(https)
        # 443: what QUIC would reach; 53: an outside resolver; 123: NTP (allowed); 51820: WireGuard.
        for port in (443, 53, 123, 51820):
            serve(socketserver.ThreadingUDPServer(("0.0.0.0", port), udp_handler("origin", log)))
        # 2222: a port the test allows for this address only; 1194: OpenVPN over TCP (refused).
        for port in (2222, 1194):
            listener = socket.create_server(("0.0.0.0", port))

            def accept(listener: socket.socket = listener, port: int = port) -> None:
                while True:
                    conn, _ = listener.accept()
                    record(log, f"origin TCP {port} connection")
                    conn.sendall(b"hello from the origin\n")
                    conn.close()

            threading.Thread(target=accept, daemon=True).start()
        dot = socket.create_server(("0.0.0.0", 853))

        def accept_dot() -> None:
            while True:
                conn, _ = dot.accept()
                record(log, "origin DoT connection")
                conn.close()

        threading.Thread(target=accept_dot, daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) > 3 else None)
