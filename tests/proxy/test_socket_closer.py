"""SocketCloser on real sockets: what mitmproxy's handler still holds when a connection is reported gone.

The leak itself needs Python 3.12+ (tests/proxy/test_proxy_e2e.py::test_a_half_closed_connection_is_closed
shows it end to end); here the component is driven on any Python with the state mitmproxy leaves behind: the
handler's transports table still holding the socket of a connection that is gone.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from mitmproxy import connection
from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy.proxy import server_hooks
from mitmproxy.proxy.server import ConnectionIO
from mitmproxy.test import taddons, tflow

from classgate.proxy.addons.socket_closer import SocketCloser


async def _stream_pair() -> tuple[ConnectionIO, ConnectionIO, asyncio.Server]:
    """A real TCP connection on loopback: the proxy's side, as mitmproxy's handler holds it, and the peer's.
    Both keep reader and writer: asyncio closes a stream whose reader or writer is collected."""
    accepted: asyncio.Future[ConnectionIO] = asyncio.get_running_loop().create_future()
    server = await asyncio.start_server(lambda r, w: accepted.set_result(ConnectionIO(reader=r, writer=w)),
                                        "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
    peer = ConnectionIO(reader=reader, writer=writer)
    return await asyncio.wait_for(accepted, 5), peer, server


async def _peer_sees_close(peer: ConnectionIO) -> bool:
    assert isinstance(peer.reader, asyncio.StreamReader)
    try:
        return await asyncio.wait_for(peer.reader.read(1), 0.5) == b""
    except TimeoutError:
        return False


@pytest.mark.parametrize(
    ("which", "held", "already_closing", "closed"),
    [
        ("client", True, False, True),  # the handler still holds the gone client's socket: closed
        ("server", True, False, True),  # the same for an upstream connection
        ("client", False, False, False),  # the handler dropped it (it closed it itself): not ours to touch
        ("server", False, False, False),
        ("client", True, True, True),  # already closing: left to finish, no second close
    ],
)
def test_a_socket_left_open_is_closed_when_its_connection_is_reported_gone(which, held, already_closing, closed):
    async def scenario() -> bool:
        io, peer, server = await _stream_pair()
        writer = io.writer
        assert isinstance(writer, asyncio.StreamWriter)
        client = tflow.tclient_conn()
        upstream = tflow.tserver_conn()
        gone: connection.Connection = client if which == "client" else upstream
        handler = SimpleNamespace(transports={gone: io} if held else {})
        with taddons.context() as tctx:
            proxyserver = Proxyserver()
            tctx.master.addons.add(proxyserver)
            proxyserver.connections[client.id] = handler
            closer = SocketCloser()
            closer.running()
            if already_closing:
                writer.close()
            if which == "client":
                closer.client_disconnected(client)
            else:
                closer.server_disconnected(server_hooks.ServerConnectionHookData(server=upstream, client=client))
            seen = await _peer_sees_close(peer)
        for w in (writer, peer.writer):
            assert w is not None
            w.close()
        server.close()
        return seen

    assert asyncio.run(scenario()) is closed


def test_without_mitmproxy_s_proxy_server_nothing_is_touched():
    with taddons.context():
        closer = SocketCloser()
        closer.running()  # no "proxyserver" addon: nothing to look in
        closer.client_disconnected(tflow.tclient_conn())
