"""Sockets mitmproxy leaves open: a connection its peer half-closed, closed by the proxy while it reads the FIN.

mitmproxy's connection handler (`ConnectionHandler.handle_connection` in mitmproxy/proxy/server.py, the same
from 11.0 to the 13.0 development branch) reads until the peer's FIN, then gives the layers a
ConnectionClosed event. When a layer answers that event by closing the connection (a refused TLS
handshake, a refused request), `close_connection` cancels the handler task that is still feeding the event.
On Python 3.12 and later that cancellation is raised inside the await, and the `writer.close()` after it
never runs: the socket stays in CLOSE-WAIT, its file descriptor held until the garbage collector happens to
free the handler. On Python 3.11 the event finishes first and the socket is closed. A student's script that
sends a byte of junk and half-closes, in a loop, would otherwise run a gateway on Python 3.12+ (mitmproxy 12,
Debian 13) out of descriptors while each connection looks closed in the log.

When mitmproxy reports a connection gone (`client_disconnected`, `server_disconnected`), this closes the
socket the handler still holds for it. A handler that closed its socket itself has dropped it by then, so on
the ordinary path (and on Python 3.11 always) this finds nothing and does nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from mitmproxy import connection, ctx
from mitmproxy.proxy import server_hooks

log = logging.getLogger(__name__)


class SocketCloser:
    def __init__(self) -> None:
        self._handlers: dict[Any, Any] | None = None  # mitmproxy's live connection handlers by client id

    def running(self) -> None:
        # Looked up, not wired: mitmproxy's proxy server addon keeps the handlers while their client is served.
        self._handlers = getattr(ctx.master.addons.get("proxyserver"), "connections", None)

    def client_disconnected(self, client: connection.Client) -> None:
        self._close_left_open(client.id, client)

    def server_disconnected(self, data: server_hooks.ServerConnectionHookData) -> None:
        self._close_left_open(data.client.id, data.server)

    def _close_left_open(self, client_id: str, conn: connection.Connection) -> None:
        handler = self._handlers.get(client_id) if self._handlers is not None else None
        held = getattr(handler, "transports", {}).get(conn)
        writer = getattr(held, "writer", None)
        # Only asyncio's streams (regular and transparent mode); mitmproxy_rs streams close themselves.
        if isinstance(writer, asyncio.StreamWriter) and not writer.is_closing():
            log.debug("closing a socket mitmproxy left open after the peer half-closed it")
            writer.close()
