"""Asking the upstream resolvers: UDP first, TCP when the answer is truncated, the next resolver on failure.

Each query goes out from a fresh UDP socket (a port the kernel picks at random) with a random id, connected to
the resolver, and only an answer with that id to that exact question is taken: a spoofed answer has to guess
both (RFC 5452). The resolvers are tried in the order the admin gave, `timeout` seconds each. At most
`max_in_flight` queries are out at once; identical questions in flight share one query (the resolver chain does
that, see resolver.py), so a burst for one name is one upstream query.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import struct
from collections.abc import Sequence
from typing import Final

from classgate.proxy.address import Address
from classgate.proxy.dns.wire import TCP_MAX, Answer, Truncated, WireError, pack_query, parse_response

MAX_IN_FLIGHT: Final = 512
_LENGTH: Final = struct.Struct("!H")


class UpstreamError(Exception):
    """No upstream resolver answered: the client gets SERVFAIL."""


class _Exchange(asyncio.DatagramProtocol):
    def __init__(self, query_id: int, question: bytes) -> None:
        self.query_id, self.question = query_id, question
        self.answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        if self.answer.done():
            return
        try:
            self.answer.set_result(parse_response(data, self.query_id, self.question))
        except Truncated as e:
            self.answer.set_exception(e)
        except WireError:
            pass  # not our answer (or unreadable): keep waiting until the timeout

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)  # ICMP port unreachable: nothing listens there

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc or ConnectionError("closed"))


class Upstream:
    def __init__(self, servers: Sequence[Address], timeout: float = 2.0, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        if not servers:
            raise ValueError("no upstream resolver")
        self.servers = tuple(servers)
        self.timeout = timeout
        self._slots = asyncio.Semaphore(max_in_flight)

    async def exchange(self, question: bytes, *, do: bool, cd: bool) -> Answer:
        """The first answer an upstream gives to `question`; raises UpstreamError."""
        problems: list[str] = []
        async with self._slots:
            for server in self.servers:
                try:
                    try:
                        return await self._udp(server, question, do=do, cd=cd)
                    except Truncated:
                        return await self._tcp(server, question, do=do, cd=cd)
                except (OSError, TimeoutError, WireError, asyncio.IncompleteReadError) as e:
                    problems.append(f"{server}: {type(e).__name__}")
        raise UpstreamError("no upstream answered (" + ", ".join(problems) + ")")

    async def _udp(self, server: Address, question: bytes, *, do: bool, cd: bool) -> Answer:
        loop = asyncio.get_running_loop()
        query_id = secrets.randbits(16)
        family = socket.AF_INET6 if ":" in server.host else socket.AF_INET
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _Exchange(query_id, question), remote_addr=(server.host, server.port), family=family)
        try:
            transport.sendto(pack_query(query_id, question, do=do, cd=cd))
            return await asyncio.wait_for(protocol.answer, self.timeout)
        finally:
            transport.close()

    async def _tcp(self, server: Address, question: bytes, *, do: bool, cd: bool) -> Answer:
        query_id = secrets.randbits(16)
        message = pack_query(query_id, question, do=do, cd=cd)

        async def ask() -> Answer:
            reader, writer = await asyncio.open_connection(server.host, server.port)
            try:
                writer.write(_LENGTH.pack(len(message)) + message)
                await writer.drain()
                (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
                if not 0 < length <= TCP_MAX:
                    raise WireError("an empty answer")
                return parse_response(await reader.readexactly(length), query_id, question)
            finally:
                writer.close()

        return await asyncio.wait_for(ask(), self.timeout)
