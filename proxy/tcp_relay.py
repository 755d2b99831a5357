"""A plain TCP relay between two connected sockets: what a passed-through connection is once it is decided.

A passthrough is never read by the gateway again after its ClientHello: every byte either way is copied as it
comes. Two asyncio Protocols do that with the least work per chunk (no streams, no task per direction), with
what a relay of someone else's connection must keep:
- flow control: a side whose peer cannot take more (its write buffer above `HIGH_WATER`) stops being read,
  so a fast server behind a slow phone costs the gateway at most that buffer, not the whole download;
- half-close: the end of one direction (FIN) is passed on and the other direction goes on until it ends too;
- an idle timeout (`IDLE_TIMEOUT_SECONDS`, mitmproxy's own for TCP), so a connection both ends forgot does not
  hold a descriptor for ever; checked once per period rather than timed per chunk.
No mitmproxy here: proxy/addons/passthrough_splice.py hands a connection over from mitmproxy.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Final

IDLE_TIMEOUT_SECONDS: Final = 600.0  # mitmproxy's TCP_TIMEOUT: a passthrough lives as long as it did under it
HIGH_WATER: Final = 256 * 1024  # bytes waiting to be sent to one side before the other side is no longer read
CONNECT_TIMEOUT_SECONDS: Final = 20.0  # an upstream that does not answer the SYN: the client is closed


class _Side(asyncio.Protocol):
    """One socket of the relay: what it receives goes to the other side."""

    def __init__(self, relay: TcpRelay) -> None:
        self.relay = relay
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.ended = False  # this side sent its FIN (nothing more will be read from it)
        self.pending = bytearray()  # received before the peer was connected

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=HIGH_WATER)
        peer = self.peer
        if peer is None:
            return
        if peer.pending:  # what the other side sent before this one was attached comes first
            transport.write(bytes(peer.pending))
            peer.pending.clear()
            if peer.transport is not None:
                peer.transport.resume_reading()
        if peer.ended and transport.can_write_eof():
            transport.write_eof()

    def data_received(self, data: bytes) -> None:
        self.relay.active = True
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.write(data)
            return
        self.pending += data
        if len(self.pending) > HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()  # resumed when the peer is attached and takes it

    def eof_received(self) -> bool:
        self.ended = True
        peer = self.peer
        if peer is not None and peer.transport is not None and peer.transport.can_write_eof():
            peer.transport.write_eof()
        if peer is None or peer.ended:
            self.relay.close()
            return False
        return True  # keep the socket open: the other direction goes on

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.relay.close()


class TcpRelay:
    """Relays `client` (a connected socket, taken over) to `upstream`, sending `first_bytes` ahead of the rest.

    `run` returns when both sockets are closed; it never raises for what the network does (a refused or
    unreachable upstream closes the client; `error` says why)."""

    def __init__(self, idle_timeout: float = IDLE_TIMEOUT_SECONDS) -> None:
        self.idle_timeout = idle_timeout
        self.active = False  # data moved since the last idle check
        self.error: str | None = None
        self._client = _Side(self)
        self._upstream = _Side(self)
        self._client.peer, self._upstream.peer = self._upstream, self._client
        self._done: asyncio.Future[None] | None = None
        self._idle: asyncio.TimerHandle | None = None

    async def connect(self, address: tuple[str, int], connect_timeout: float = CONNECT_TIMEOUT_SECONDS) -> bool:
        """Opens the upstream connection; False (and `error`) if it cannot be."""
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.create_connection(lambda: self._upstream, *address), connect_timeout)
        except (OSError, TimeoutError) as e:
            self.error = f"upstream connection failed: {getattr(e, 'strerror', None) or e or 'timeout'}"
            return False
        return True

    async def run(self, client: socket.socket, first_bytes: bytes) -> None:
        """Relays until both sides are done. The upstream must be connected (`connect`), else the client is
        closed at once."""
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        upstream = self._upstream.transport
        if upstream is None or upstream.is_closing():
            client.close()
            self.close()
            return
        if first_bytes:
            upstream.write(first_bytes)
        try:
            await loop.connect_accepted_socket(lambda: self._client, sock=client)
        except OSError as e:
            self.error = f"the client's socket could not be relayed: {e}"
            client.close()
            self.close()
            return
        self._idle = loop.call_later(self.idle_timeout, self._check_idle)
        try:
            await self._done
        finally:
            self.close()

    def close(self) -> None:
        """Closes both sides (what is buffered for a side is still sent, then it closes)."""
        for side in (self._client, self._upstream):
            if side.transport is not None and not side.transport.is_closing():
                side.transport.close()
        if self._idle is not None:
            self._idle.cancel()
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    def _check_idle(self) -> None:
        if not self.active:
            self.error = "idle"
            for side in (self._client, self._upstream):
                if side.transport is not None:
                    side.transport.abort()  # nobody is reading what is left
            self.close()
            return
        self.active = False
        self._idle = asyncio.get_running_loop().call_later(self.idle_timeout, self._check_idle)
