"""The names' addresses the gateway's resolver gave out, shared from worker 0 (which runs it) to the others.

The TLS and request gates accept a destination when the gateway itself resolved the name to it
(proxy/name_addresses.py): a device that asked the gateway's DNS for dns-only.test and then connects to the
answer is honest. The resolver runs in worker 0, but the kernel may hand the connection to any worker; each
answer is therefore sent to the other workers too, one datagram each on a Unix socket in the state dir (its
folder is the classgate user's alone: nobody else can teach a worker an address). A datagram that finds no
worker (restarting) is dropped: that worker then looks the name up itself, as without workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import socket
from pathlib import Path
from typing import Final

from classgate.proxy.local_addresses import IpAddress
from classgate.proxy.name_addresses import NameAddresses

log = logging.getLogger(__name__)

MAX_DATAGRAM: Final = 4096  # a name (<= 253) and a few dozen addresses


def socket_path(run_dir: Path, index: int) -> Path:
    return run_dir / f"names-{index}.sock"


class PublishingNames(NameAddresses):
    """Worker 0's table: whatever its resolver learns, the other workers learn too."""

    def __init__(self, peers: list[Path]) -> None:
        super().__init__()
        self._peers = [str(p) for p in peers]
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)

    def learn(self, name: str, addresses: tuple[IpAddress, ...], ttl: float) -> None:
        super().learn(name, addresses, ttl)
        payload = json.dumps({"name": name, "addresses": [str(a) for a in addresses], "ttl": ttl}).encode()
        for peer in self._peers:
            try:
                self._sock.sendto(payload, peer)
            except OSError:  # that worker is restarting (no socket), or its queue is full: it looks up itself
                continue


def _parse(data: bytes) -> tuple[str, tuple[IpAddress, ...], float] | None:
    try:
        doc = json.loads(data)
        name, ttl = doc["name"], float(doc["ttl"])
        addresses = tuple(ipaddress.ip_address(a) for a in doc["addresses"])
    except (ValueError, KeyError, TypeError):
        return None
    return (name, addresses, ttl) if isinstance(name, str) and addresses else None


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, names: NameAddresses) -> None:
        self.names = names

    def datagram_received(self, data: bytes, addr: object) -> None:
        learned = _parse(data)
        if learned is None:
            log.debug("names feed: a malformed datagram was ignored")
            return
        self.names.learn(*learned)


class NamesFeed:
    """The other workers' addon: receive worker 0's answers into this worker's table from `running` on."""

    def __init__(self, names: NameAddresses, path: Path) -> None:
        self.names = names
        self.path = path
        self._transport: asyncio.BaseTransport | None = None

    async def running(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self.path.unlink(missing_ok=True)  # a previous run of this worker's
            sock.bind(str(self.path))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        except OSError as e:
            sock.close()
            log.warning("classgate: cannot receive the resolver's answers at %s (%s); this worker looks names "
                        "up itself", self.path, e)
            return
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(lambda: _Receiver(self.names), sock=sock)

    def done(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
            with contextlib.suppress(OSError):
                self.path.unlink()
