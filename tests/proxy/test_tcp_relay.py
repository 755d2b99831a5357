"""TcpRelay between real loopback sockets: order of bytes, half-close, a refused upstream, the idle timeout,
and flow control (a client that does not read holds back the upstream instead of filling the gateway)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest

from classgate.proxy.tcp_relay import HIGH_WATER, TcpRelay

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _relay_with(upstream_script: Script, client_script: Callable[[socket.socket], Awaitable[object]],
                      first_bytes: bytes = b"", idle_timeout: float = 30.0) -> tuple[object, TcpRelay]:
    """A relay from a socketpair's gateway end to an upstream server running `upstream_script`; returns what
    `client_script` (driving the other end) returned, and the relay."""
    server = await asyncio.start_server(upstream_script, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    device, gateway_end = socket.socketpair()
    device.setblocking(False)
    relay = TcpRelay(idle_timeout=idle_timeout)
    try:
        assert await relay.connect(("127.0.0.1", port))
        running = asyncio.create_task(relay.run(gateway_end, first_bytes))
        result = await asyncio.wait_for(client_script(device), 20)
        device.close()  # the device goes away: the relay ends
        await asyncio.wait_for(running, 20)
        return result, relay
    finally:
        device.close()
        server.close()
        await server.wait_closed()


async def _recv_all(sock: socket.socket, limit: int = 64 * 1024 * 1024) -> bytes:
    loop = asyncio.get_running_loop()
    out = bytearray()
    while len(out) < limit:
        chunk = await loop.sock_recv(sock, 65536)
        if not chunk:
            break
        out += chunk
    return bytes(out)


async def _echo_upper(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    data = await reader.read()  # until the client's FIN, relayed
    writer.write(b"got:" + data.upper())
    await writer.drain()
    writer.close()


@pytest.mark.parametrize(
    ("first", "later"),
    [
        (b"hello-", b"world"),  # the ClientHello mitmproxy read, then what the client sends after it
        (b"", b"only-later"),
        (b"only-first", b""),
        (b"x" * 300_000, b"y" * 300_000),  # more than the high-water mark either side
    ],
)
def test_bytes_reach_the_upstream_in_order_and_the_answer_comes_back(first, later):
    async def client(sock: socket.socket) -> bytes:
        loop = asyncio.get_running_loop()
        if later:
            await loop.sock_sendall(sock, later)
        sock.shutdown(socket.SHUT_WR)  # half-close: the answer still comes back
        return await _recv_all(sock)

    answer, relay = asyncio.run(_relay_with(_echo_upper, client, first_bytes=first))
    assert answer == b"got:" + (first + later).upper()
    assert relay.error is None


def test_an_upstream_that_speaks_first_is_heard_in_order():
    async def greeter(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 first ")  # before the relay has attached the client, usually
        writer.write(b"second")
        await writer.drain()
        writer.close()

    async def client(sock: socket.socket) -> bytes:
        return await _recv_all(sock)

    answer, _ = asyncio.run(_relay_with(greeter, client))
    assert answer == b"220 first second"


def test_a_refused_upstream_is_an_error_not_an_exception():
    async def attempt() -> tuple[bool, str | None]:
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            port = unused.getsockname()[1]  # bound, not listening: refused
            relay = TcpRelay()
            ok = await relay.connect(("127.0.0.1", port), connect_timeout=5)
            return ok, relay.error

    ok, error = asyncio.run(attempt())
    assert not ok and error and error.startswith("upstream connection failed")


def test_an_idle_relay_is_closed():
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # waits for ever unless the relay closes
        writer.close()  # Python 3.12's Server.wait_closed waits for every connection's transport

    async def client(sock: socket.socket) -> bytes:
        return await _recv_all(sock)  # the relay's close ends this

    answer, relay = asyncio.run(_relay_with(silent, client, idle_timeout=0.3))
    assert answer == b"" and relay.error == "idle"


def test_a_client_that_does_not_read_holds_the_upstream_back():
    total = 32 * 1024 * 1024
    sent = {"before_reading": 0}

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        chunk = b"z" * 65536
        for _ in range(total // len(chunk)):
            writer.write(chunk)
            await writer.drain()  # blocks once the relay stops reading (and the kernel buffers are full)
            sent["so_far"] = sent.get("so_far", 0) + len(chunk)
        writer.close()

    async def client(sock: socket.socket) -> int:
        await asyncio.sleep(1.0)  # a phone that does not read
        sent["before_reading"] = sent.get("so_far", 0)
        return len(await _recv_all(sock, limit=total))

    received, _ = asyncio.run(_relay_with(flood, client))
    assert received == total  # nothing lost once it reads
    # What the relay let through while nobody read: its high-water mark plus the kernel's socket buffers
    # (a few MiB on loopback), not the 32 MiB download.
    assert sent["before_reading"] < HIGH_WATER + 12 * 1024 * 1024, sent
