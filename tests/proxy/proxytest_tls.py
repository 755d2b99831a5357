"""Real TLS ClientHello bytes (made by Python's ssl module) for the TLS gate's unit tests."""

from __future__ import annotations

import ssl

from mitmproxy import connection
from mitmproxy.proxy import context
from mitmproxy.test import taddons, tflow
from mitmproxy.tls import ClientHello, ClientHelloData, TlsData


def client_hello_bytes(sni: str | None, *, max_tls12: bool = False) -> bytes:
    """The whole first TLS record (record header, handshake header, ClientHello) Python's ssl sends."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if max_tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    conn = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    try:
        conn.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


SAME_AS_SNI: tuple[str, int] = ("<same as the SNI>", 0)


def hello_data(tctx: taddons.context, client_ip: str, sni: str | None,
               server: tuple[str, int] | None = SAME_AS_SNI) -> ClientHelloData:
    """A ClientHello from `client_ip`; the connection's target is the SNI's host unless `server` says."""
    if server is SAME_AS_SNI:
        server = (sni or "dest.example", 443)  # what a client CONNECTs to, or its original destination
    client = tflow.tclient_conn()
    client.peername = (client_ip, 40000)
    ctx = context.Context(client, tctx.options)
    ctx.server = connection.Server(address=server)
    record = client_hello_bytes(sni)
    assert record[0] == 0x16 and record[5] == 0x01  # a TLS handshake record holding a ClientHello
    hello = ClientHello(record[9:])  # minus the record (5) and handshake (4) headers
    return ClientHelloData(ctx, hello)


def tls_start(data: ClientHelloData) -> TlsData:
    return TlsData(data.context.client, data.context)
