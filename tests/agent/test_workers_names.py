"""Worker 0's resolver answers reach the other workers' name tables (agent/worker_names.py), over real sockets."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from classgate.agent.worker_names import NamesFeed, PublishingNames, socket_path
from classgate.proxy.name_addresses import NameAddresses

A, B = ipaddress.ip_address("203.0.113.7"), ipaddress.ip_address("2001:db8::7")


@pytest.mark.parametrize(
    ("learned", "expected"),
    [
        (("dns-only.test", (A,), 30.0), {"dns-only.test": (A,)}),
        (("dual.test", (A, B), 300.0), {"dual.test": (A, B)}),
    ],
)
def test_what_worker_0_learns_the_others_know(tmp_path, learned, expected):
    async def run() -> dict[str, tuple | None]:
        tables = [NameAddresses(), NameAddresses()]
        feeds = [NamesFeed(t, socket_path(tmp_path, i)) for i, t in enumerate(tables, start=1)]
        for feed in feeds:
            await feed.running()
        publisher = PublishingNames([socket_path(tmp_path, i) for i in (1, 2, 3)])  # worker 3 is down
        publisher.learn(*learned)
        for _ in range(100):  # bounded: the datagrams are local
            if all(t.cached(learned[0]) is not None for t in tables):
                break
            await asyncio.sleep(0.01)
        for feed in feeds:
            feed.done()
        assert publisher.cached(learned[0]) == learned[1]
        assert not list(tmp_path.glob("*.sock"))  # each worker removes its socket when it stops
        return {name: tables[1].cached(name) for name in expected} | {"first": tables[0].cached(learned[0])}

    got = asyncio.run(run())
    assert got == {**expected, "first": learned[1]}


@pytest.mark.parametrize("datagram", [
    b"not json",
    b'{"name": "x.test"}',
    b'{"name": "x.test", "addresses": ["1.2.3.4"]}',  # no TTL
    b'{"name": "x.test", "addresses": [], "ttl": 5}',
    b'{"name": "x.test", "addresses": ["nope"], "ttl": 5}',
])
def test_a_malformed_datagram_teaches_nothing(tmp_path, datagram):
    import socket

    async def run() -> tuple | None:
        table = NameAddresses()
        feed = NamesFeed(table, socket_path(tmp_path, 1))
        await feed.running()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(datagram, str(socket_path(tmp_path, 1)))
        await asyncio.sleep(0.1)
        feed.done()
        return table.cached("x.test")

    assert asyncio.run(run()) is None
