"""A passed-through connection taken out of mitmproxy once it is decided, and relayed by the gateway itself.

A connection the TLS gate passes through is never read again: under mitmproxy it still cost a server
connection with its hooks and its task, the TCP layer's events for every chunk, and the handler's own
machinery, 1.6-1.7 ms of CPU each where the gateway's own decision is ~0.1 ms (docs/performance.md). A
school's passthroughs (banks, the never-decrypt categories, every device not inspected) are most of its
connections, so they are relayed here (proxy/tcp_relay.py) instead.

The handover, at the layer decision (proxy/addons/early_layer.py, tls_gate.py's `early_layer`), against
mitmproxy's ConnectionHandler (mitmproxy/proxy/server.py, the same in 11.0 and 12.x):
1. `take` checks that it can take the connection: a plain asyncio socket (not the mitmproxy_rs streams of
   WireGuard or local mode), nothing still waiting to be written to it, no server connection open. Otherwise
   mitmproxy relays it, with a TCP layer, as it did before.
2. It duplicates the socket's descriptor and closes mitmproxy's transport: the TCP connection stays open
   through the duplicate (a socket ends when its last descriptor is closed; closing one sends nothing), and
   mitmproxy ends its side as for a client that went away (client_disconnected, its objects freed).
3. `HandOff`, the layer set where the TCP layer would be, collects every byte mitmproxy read from the client
   (the ClientHello and whatever followed it into mitmproxy's buffers) until mitmproxy's side is closed; what
   came later is still in the kernel, for the duplicate.
4. The relay asks every addon's `server_connect` where (and whether) to connect, as mitmproxy does for every
   upstream connection: the upstream guard resolves and checks it there (the gateway's own addresses
   refused, the address pinned), and an admin's own script (`--set scripts=`) sees it too. It connects to the
   address that leaves, sends those bytes first, then relays. mitmproxy's later server hooks
   (server_connected, server_disconnected) are not fired: mitmproxy's side of the connection is gone.
The connection stays counted against its device's limit (proxy/addons/device_limit.py) until the relay ends.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Any, Final

from mitmproxy import connection, ctx
from mitmproxy.proxy import commands, events, layer, server_hooks

from classgate.proxy.addons.device_limit import DeviceConnectionLimit
from classgate.proxy.addons.upstream_guard import UpstreamGuard
from classgate.proxy.failsafe import FailSafe
from classgate.proxy.tcp_relay import IDLE_TIMEOUT_SECONDS, TcpRelay

log = logging.getLogger(__name__)

# mitmproxy closes its side within an event loop turn or two of `take`; this only bounds a handler that never
# does (the connection is then closed, not relayed).
HANDOFF_TIMEOUT_SECONDS: Final = 10.0


class HandOff(layer.Layer):
    """In place of mitmproxy's TCP layer for a connection taken over: the client's bytes mitmproxy read, until
    its side of the connection is closed; then mitmproxy's side ends."""

    def __init__(self, context: Any, collected: asyncio.Future[bytes]) -> None:
        super().__init__(context)
        self._bytes = bytearray()
        self._collected = collected

    def _handle_event(self, event: events.Event) -> layer.CommandGenerator[None]:
        client = self.context.client
        if isinstance(event, events.DataReceived) and event.connection == client:
            self._bytes += event.data
        elif isinstance(event, events.ConnectionClosed) and event.connection == client:
            if not self._collected.done():
                self._collected.set_result(bytes(self._bytes))
            yield commands.CloseConnection(client)


class PassthroughSplice:
    def __init__(self, guard: UpstreamGuard, limit: DeviceConnectionLimit | None, failsafe: FailSafe,
                 idle_timeout: float = IDLE_TIMEOUT_SECONDS) -> None:
        self.guard = guard
        self.failsafe = failsafe
        self.limit = limit
        self.idle_timeout = idle_timeout
        self._handlers: dict[Any, Any] | None = None  # mitmproxy's live connection handlers by client id
        self._relays: set[asyncio.Task[None]] = set()

    def running(self) -> None:
        # Looked up, not wired: mitmproxy's proxy server addon keeps the handlers while their client is served.
        self._handlers = getattr(ctx.master.addons.get("proxyserver"), "connections", None)

    def done(self) -> None:
        for task in list(self._relays):
            task.cancel()

    def take(self, nextlayer: layer.NextLayer) -> bool:
        """Takes over a connection decided to be passed through: True if it is relayed here (its layer is set),
        False if mitmproxy must relay it (nothing was changed)."""
        context = nextlayer.context
        client = context.client
        taken = self._socket_of(context)
        if taken is None:
            return False
        transport, duplicate = taken
        # From here on nothing falls back to mitmproxy: its side of the connection is being closed.
        collected: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        nextlayer.layer = HandOff(context, collected)
        if self.limit is not None:
            self.limit.hold(client)
        transport.close()  # mitmproxy's descriptor; the duplicate keeps the connection (see the module's 2.)
        task = asyncio.create_task(self._relay(client, context.server, duplicate, collected))
        self._relays.add(task)
        task.add_done_callback(self._relays.discard)
        return True

    def _socket_of(self, context: Any) -> tuple[asyncio.Transport, socket.socket] | None:
        """mitmproxy's transport of the client connection, reading stopped, and a duplicate of its socket; None
        if this connection cannot be taken over."""
        handler = self._handlers.get(context.client.id) if self._handlers is not None else None
        io = getattr(handler, "transports", {}).get(context.client)
        writer = getattr(io, "writer", None)
        if not isinstance(writer, asyncio.StreamWriter):
            return None  # WireGuard and local mode: mitmproxy_rs streams, no socket of ours to take
        if context.server.state is not connection.ConnectionState.CLOSED or not context.server.address:
            return None  # a server connection is already open (connection_strategy=eager): mitmproxy's to run
        transport = writer.transport
        if not isinstance(transport, asyncio.Transport) or transport.is_closing():
            return None
        if transport.get_write_buffer_size():
            return None  # mitmproxy still has bytes to send this client (its CONNECT answer)
        sock = transport.get_extra_info("socket")
        if sock is None:
            return None
        try:
            duplicate = socket.socket(fileno=os.dup(sock.fileno()))
        except OSError as e:  # out of descriptors: mitmproxy relays it, which needs none more
            log.warning("classgate: a passthrough is relayed by mitmproxy: %s", e.strerror or e)
            return None
        transport.pause_reading()  # what the client sends next stays in the kernel, for the duplicate
        return transport, duplicate

    async def _relay(self, client: connection.Client, server: connection.Server, sock: socket.socket,
                     collected: asyncio.Future[bytes]) -> None:
        relay = TcpRelay(self.idle_timeout)
        handed = False  # the socket belongs to the relay's transport, which closes it
        try:
            connected = False
            address = await self._destination(client, server)
            if address is None:
                relay.error = server.error or "no destination"
            else:
                connected = await relay.connect(address)
            try:
                first = await asyncio.wait_for(collected, HANDOFF_TIMEOUT_SECONDS)
            except TimeoutError:
                relay.error = "mitmproxy did not hand the connection over"
                connected = False
            if connected:
                handed = True
                await relay.run(sock, first)
            else:
                relay.close()
            log.debug("relayed passthrough ended: %s", relay.error or "closed")
        except asyncio.CancelledError:
            relay.close()
            raise
        except Exception as e:  # noqa: BLE001 - one relay's bug must not end the others: closed, counted
            self.failsafe.failed("relay", e)
            relay.close()
        finally:
            if not handed:
                sock.close()
            if self.limit is not None:
                self.limit.release(client)

    async def _destination(self, client: connection.Client, server: connection.Server) -> tuple[str, int] | None:
        """Where the addons' server_connect sends this connection; None if one of them refused it."""
        try:
            await ctx.master.addons.handle_lifecycle(
                server_hooks.ServerConnectHook(server_hooks.ServerConnectionHookData(client=client, server=server)))
        finally:
            self.guard.forget(server)
        if server.error or not server.address:
            return None
        return str(server.address[0]), int(server.address[1])
