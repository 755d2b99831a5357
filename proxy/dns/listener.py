"""The resolver's sockets: UDP and TCP on one address, in the gateway's own event loop.

Our own asyncio listener rather than mitmproxy's DNS mode (docs/dns.md says why: mitmproxy closes the
connection on a malformed message where a resolver must answer FORMERR, packs UDP answers of any size without
the TC bit, and its default addons would resolve A/AAAA queries themselves before any filter of ours).

UDP is read with recvmsg and IP_PKTINFO / IPV6_PKTINFO: a socket bound to every address still learns which
of the gateway's addresses a query came to (after nftables' redirect: the LAN interface's), answers from that
address, and gives it to the resolver as "the gateway's own address" for the block answer. Each wake-up reads
at most `BATCH` datagrams, so one busy client cannot hold the event loop. At most `MAX_IN_FLIGHT` queries are
being resolved at once; more are dropped (a flood, not a school).

TCP (RFC 7766): each connection may send queries one after the other, up to `MAX_QUERIES_PER_CONNECTION`,
idle for at most `IDLE_SECONDS`; at most `MAX_TCP_CONNECTIONS` at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import socket
import struct
from dataclasses import dataclass
from typing import Final

from classgate.proxy.address import Address
from classgate.proxy.dns.server import PendingReply, QueryHandler
from classgate.proxy.dns.wire import MAX_QUERY_BYTES, pack_error
from classgate.proxy.local_addresses import IpAddress, plain_address

log = logging.getLogger(__name__)

BATCH: Final = 64
MAX_IN_FLIGHT: Final = 2048
MAX_TCP_CONNECTIONS: Final = 256
MAX_QUERIES_PER_CONNECTION: Final = 200
IDLE_SECONDS: Final = 10.0
# Linux's IP_PKTINFO (Python 3.11's socket module does not name it); IPv6's is named.
IP_PKTINFO: Final = getattr(socket, "IP_PKTINFO", 8)
_IN_PKTINFO: Final = struct.Struct("=I4s4s")  # ifindex, local (spec_dst), destination
_IN6_PKTINFO: Final = struct.Struct("=16sI")  # address, ifindex
_ANCILLARY: Final = socket.CMSG_SPACE(_IN6_PKTINFO.size)
_LENGTH: Final = struct.Struct("!H")
FORMERR: Final = 1


@dataclass
class BoundSockets:
    """The listener's sockets, bound (so a taken port stops the start, before anything runs)."""

    address: Address
    udp: socket.socket
    tcp: socket.socket
    pktinfo: bool  # bound to every address: the local address comes with each datagram

    def close(self) -> None:
        self.udp.close()
        self.tcp.close()


def bind(address: Address) -> BoundSockets:
    """Bind UDP and TCP on `address` (an IP literal); raises OSError."""
    ip = ipaddress.ip_address(address.host)
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    udp = socket.socket(family, socket.SOCK_DGRAM)
    tcp = socket.socket(family, socket.SOCK_STREAM)
    try:
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        pktinfo = ip.is_unspecified
        if pktinfo:
            if family == socket.AF_INET6:
                udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
                udp.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)  # for IPv4-mapped clients
            else:
                udp.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        udp.bind((address.host, address.port))
        # Port 0 (tests): TCP takes the port UDP was given.
        tcp.bind((address.host, udp.getsockname()[1]))
        tcp.listen(128)
        udp.setblocking(False)
        tcp.setblocking(False)
    except OSError:
        udp.close()
        tcp.close()
        raise
    return BoundSockets(Address(address.host, udp.getsockname()[1]), udp, tcp, pktinfo)


def _local_of(ancillary: list[tuple[int, int, bytes]], fallback: IpAddress | None) -> tuple[IpAddress | None, list]:
    """The address a datagram came to, and the ancillary data that makes the answer leave from it."""
    for level, kind, data in ancillary:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(data) >= _IN_PKTINFO.size:
            _, _, destination = _IN_PKTINFO.unpack_from(data)
            reply = _IN_PKTINFO.pack(0, destination, b"\0\0\0\0")
            return ipaddress.IPv4Address(destination), [(socket.IPPROTO_IP, IP_PKTINFO, reply)]
        if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO and len(data) >= _IN6_PKTINFO.size:
            raw, _ = _IN6_PKTINFO.unpack_from(data)
            reply = _IN6_PKTINFO.pack(raw, 0)
            local = plain_address(str(ipaddress.IPv6Address(raw)))
            return local, [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, reply)]
    return fallback, []


class DnsListener:
    def __init__(self, sockets: BoundSockets, handler: QueryHandler) -> None:
        self.sockets = sockets
        self.handler = handler
        bound = plain_address(sockets.address.host)
        self._bound = None if bound is None or bound.is_unspecified else bound
        self._tasks: set[asyncio.Task[None]] = set()
        self._tcp_server: asyncio.Server | None = None
        self._tcp_connections = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def address(self) -> Address:
        return self.sockets.address

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.sockets.udp.fileno(), self._udp_readable)
        self._tcp_server = await asyncio.start_server(self._tcp_client, sock=self.sockets.tcp)

    async def stop(self) -> None:
        if self._loop is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self.sockets.udp.fileno())
        if self._tcp_server is not None:
            self._tcp_server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.sockets.close()

    # -- UDP -----------------------------------------------------------------------------------------
    def _udp_readable(self) -> None:
        sock = self.sockets.udp
        for _ in range(BATCH):
            try:
                data, ancillary, _, peer = sock.recvmsg(MAX_QUERY_BYTES + 1, _ANCILLARY)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # an ICMP error from an earlier answer's destination: nothing to do
                log.debug("DNS UDP receive: %s", e)
                continue
            client = plain_address(peer[0])
            if client is None:
                continue
            local, reply_ancillary = _local_of(ancillary, self._bound) if self.sockets.pktinfo else (self._bound, [])
            outcome = self.handler.admit(data, client)
            if outcome is None:
                continue
            if isinstance(outcome, bytes):
                self._udp_send(outcome, peer, reply_ancillary)
                continue
            reply = self.handler.respond(outcome, client, local, tcp=False)
            if isinstance(reply, bytes):  # most queries: answered without waiting for anything
                self._udp_send(reply, peer, reply_ancillary)
                continue
            if len(self._tasks) >= MAX_IN_FLIGHT:
                self.handler.events.record_dns_failure("overloaded")
                continue
            task = asyncio.get_running_loop().create_task(self._udp_answer(reply, peer, reply_ancillary))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _udp_answer(self, reply: PendingReply, peer: tuple, ancillary: list) -> None:
        self._udp_send(await self.handler.finish(reply), peer, ancillary)

    def _udp_send(self, data: bytes, peer: tuple, ancillary: list) -> None:
        try:
            if ancillary:
                try:
                    self.sockets.udp.sendmsg([data], ancillary, 0, peer)
                    return
                except OSError as e:
                    if e.errno != errno.EINVAL:
                        raise
                    # A source the kernel will not take for this peer: let it choose (its routing does).
            self.sockets.udp.sendto(data, peer)
        except OSError as e:  # a full socket buffer or an unreachable client: UDP loses it, the client retries
            log.debug("DNS UDP send: %s", e)

    # -- TCP -----------------------------------------------------------------------------------------
    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._tcp_connections += 1
        try:
            if self._tcp_connections <= MAX_TCP_CONNECTIONS:
                await self._tcp_queries(reader, writer)
            else:
                self.handler.events.record_dns_failure("overloaded")
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            self._tcp_connections -= 1
            if task is not None:
                self._tasks.discard(task)
            writer.close()

    async def _tcp_queries(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        sockname = writer.get_extra_info("sockname")
        client = plain_address(peer[0]) if peer else None
        local = plain_address(sockname[0]) if sockname else None
        if client is None:
            return
        for _ in range(MAX_QUERIES_PER_CONNECTION):
            header = await asyncio.wait_for(reader.readexactly(_LENGTH.size), IDLE_SECONDS)
            (length,) = _LENGTH.unpack(header)
            if length == 0:
                return
            if length > MAX_QUERY_BYTES:
                # Read no more of it: answer FORMERR with its id if it came, and end the connection.
                start = await asyncio.wait_for(reader.read(4), IDLE_SECONDS)
                if len(start) >= 2:
                    self.handler.events.record_dns_failure("malformed")
                    reply = pack_error(int.from_bytes(start[:2], "big"),
                                       int.from_bytes(start[2:4], "big") if len(start) >= 4 else 0, None, FORMERR)
                    writer.write(_LENGTH.pack(len(reply)) + reply)
                    await writer.drain()
                return
            data = await asyncio.wait_for(reader.readexactly(length), IDLE_SECONDS)
            outcome = self.handler.admit(data, client)
            if outcome is None:
                return
            reply = outcome if isinstance(outcome, bytes) else await self.handler.answer(outcome, client, local,
                                                                                         tcp=True)
            writer.write(_LENGTH.pack(len(reply)) + reply)
            await writer.drain()
