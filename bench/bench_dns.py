"""The gateway's resolver: queries per second through `classgate run --dns` against an unbound resolver on the
same machine with the same upstream, cached and uncached, in one run; and what the TLS gate's consistency
check costs per new connection.

    .venv/bin/python -m bench.bench_dns [--seconds 5] [--rounds 3] [--names 20000] [--window 64]

The upstream ("the Internet") is an unbound authoritative for `--names` names. In front of it, side by side:
- classgate: `classgate run --dns` with `--dns-upstream` that unbound (rate limit lifted for the bench);
- unbound: a caching resolver forwarding to the same unbound (deploy/dns's upstream-cache settings).
Load: one asyncio UDP client (this process) keeps `--window` queries in flight for `--seconds`, from 8
loopback source addresses; "cached" asks 200 warmed names over and over, "uncached" asks each name once (a
fresh run of names per round and per resolver, so no cache holds them). The client is Python too: unbound's
figure is bounded by it (see docs/performance.md), classgate's by classgate (its process at 100% of a core).

Then, in-process: the TLS gate's decision for a transparent-mode passthrough (whose destination must be an
address of its SNI name) with the name learnt from the resolver's answer, against the same ClientHello in
regular mode (no check), per call.

Work files go to /tmp/classgate-bench-dns. Every loop is bounded by time or by a count.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import ipaddress
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from tests.proxy.dnstest_support import Unbound, free_udp_tcp_port, query_bytes, udp_exchange

WORK = Path("/tmp/classgate-bench-dns")
PIN: list[str] = []  # --pin: the resolver under test on CPU 1 (taskset), the load generator on CPU 0
SOURCES = [f"127.0.0.{i}" for i in range(20, 28)]
POLICY = """\
classgate: 1
name: bench-dns
categories:
  gambling: {domains: [casino.bench.example]}
groups:
  clients: {networks: [127.0.0.0/24]}
rules:
  - {name: harmful, action: block, categories: [gambling]}
default: allow
tls: {inspect_groups: []}
"""


def zone(names: int) -> str:
    lines = ["$ORIGIN bench.example.", "$TTL 3600", "@ IN SOA ns.bench.example. a.bench.example. 1 3600 600 86400 60",
             "@ IN NS ns.bench.example.", "ns IN A 192.0.2.1"]
    lines += [f"h{i} IN A 198.18.{i // 250 % 250}.{i % 250 + 1}" for i in range(names)]
    return "\n".join(lines) + "\n"


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answered = 0

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.answered += 1


async def load(port: int, names: list[str], seconds: float, window: int, *, cycle: bool = True) -> float:
    """Answered queries per second with `window` in flight over len(SOURCES) sockets, for at most `seconds`.

    `cycle`: ask the names over and over; else each once, and stop when all are answered."""
    loop = asyncio.get_running_loop()
    sockets = []
    for source in SOURCES:
        transport, protocol = await loop.create_datagram_endpoint(_Client, local_addr=(source, 0),
                                                                  remote_addr=("127.0.0.1", port))
        sockets.append((transport, protocol))
    total = len(names) * 1000 if cycle else len(names)
    sent = lost = 0
    start = time.perf_counter()
    deadline = start + seconds
    last_progress, last_answered = start, 0
    while time.perf_counter() < deadline:
        answered = sum(p.answered for _, p in sockets)
        if answered != last_answered:
            last_progress, last_answered = time.perf_counter(), answered
        elif time.perf_counter() - last_progress > 0.2:
            lost = sent - answered  # dropped answers must not stall the window
        if not cycle and answered + lost >= total:
            break
        while sent - answered - lost < window and sent < total:
            transport, _ = sockets[sent % len(sockets)]
            transport.sendto(query_bytes(names[sent % len(names)], query_id=sent & 0xFFFF))
            sent += 1
        await asyncio.sleep(0.0005)
    elapsed = time.perf_counter() - start
    answered = sum(p.answered for _, p in sockets)
    for transport, _ in sockets:
        transport.close()
    return answered / elapsed


def start_classgate(upstream_port: int) -> tuple[subprocess.Popen, int]:
    policy = WORK / "policy.yaml"
    policy.write_text(POLICY)
    port, proxy = free_udp_tcp_port(), free_udp_tcp_port()
    process = subprocess.Popen(
        [*PIN, str(Path(sys.executable).parent / "classgate"), "run", "--policy", str(policy), "--listen",
         f"127.0.0.1:{proxy}", "--metrics", "off", "--state-dir", str(WORK / "state"), "--dns", f"127.0.0.1:{port}",
         "--dns-upstream", f"127.0.0.1:{upstream_port}", "--dns-rate", "1000000"],
        stdout=(WORK / "classgate.log").open("w"), stderr=subprocess.STDOUT, cwd=REPO)
    wait_answering(port, process)
    return process, port


def start_unbound_resolver(upstream_port: int) -> tuple[subprocess.Popen, int]:
    port = free_udp_tcp_port()
    conf = WORK / "resolver.conf"
    conf.write_text(
        f"server:\n    port: {port}\n    interface: 127.0.0.1\n    do-daemonize: no\n    chroot: \"\"\n"
        f"    username: \"\"\n    directory: \"{WORK}\"\n    pidfile: \"\"\n    use-syslog: no\n"
        "    module-config: \"iterator\"\n    access-control: 127.0.0.0/8 allow\n    num-threads: 1\n"
        "    msg-cache-size: 32m\n    rrset-cache-size: 64m\n    edns-buffer-size: 1232\n"
        "    do-not-query-localhost: no\n    verbosity: 0\n"
        f"forward-zone:\n    name: \".\"\n    forward-addr: 127.0.0.1@{upstream_port}\n")
    process = subprocess.Popen([*PIN, shutil.which("unbound") or "/usr/sbin/unbound", "-c", str(conf)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_answering(port, process)
    return process, port


def wait_answering(port: int, process: subprocess.Popen) -> None:
    """Until the resolver answers a name of the zone with its address (NOERROR, one answer)."""
    deadline = time.monotonic() + 60
    while True:
        reply = udp_exchange(("127.0.0.1", port), query_bytes("h0.bench.example"), source=SOURCES[0], timeout=0.3)
        if reply is not None:
            if reply[3] & 0xF != 0 or reply[6:8] != b"\x00\x01":
                raise RuntimeError(f"resolver on {port} answers rcode {reply[3] & 0xF}, {reply[7]} records")
            return
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"resolver on {port} did not start")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def resolver_figures(args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    internet = Unbound(WORK, {"bench.example": zone(args.names)})
    results: dict[str, dict[str, list[float]]] = {}
    fresh = iter(range(args.names))
    try:
        for label, start in (("classgate", start_classgate), ("unbound", start_unbound_resolver)):
            process, port = start(internet.port)
            try:
                hot = [f"h{i}.bench.example" for i in range(200)]
                asyncio.run(load(port, hot, 1.0, args.window))  # warm the cache
                figures: dict[str, list[float]] = {"cached": [], "uncached": [], "cached_cpu": []}
                for _ in range(args.rounds):
                    before = cpu_seconds(process.pid)
                    t0 = time.perf_counter()
                    figures["cached"].append(asyncio.run(load(port, hot, args.seconds, args.window)))
                    figures["cached_cpu"].append((cpu_seconds(process.pid) - before) / (time.perf_counter() - t0))
                    names = [f"h{next(fresh)}.bench.example" for _ in range(args.names // (2 * args.rounds))]
                    figures["uncached"].append(asyncio.run(load(port, names, args.seconds, args.window, cycle=False)))
                results[label] = figures
            finally:
                stop(process)
    finally:
        internet.stop()
    return results


def tls_check_figures(calls: int) -> dict[str, float]:
    """µs per ClientHello decision: transparent (checked against the learnt name) vs regular (no check)."""
    from mitmproxy.proxy.mode_specs import ProxyMode
    from mitmproxy.test import taddons

    from classgate.proxy.addons.tls_gate import TlsGate
    from classgate.proxy.clock import Clock
    from classgate.proxy.context import FilterContext
    from classgate.proxy.failsafe import FailSafe
    from classgate.proxy.name_addresses import NameAddresses
    from classgate.proxy.policy_holder import PolicyHolder
    from tests.proxy.proxytest_tls import hello_data

    policy = WORK / "policy.yaml"
    policy.write_text(POLICY)
    holder = PolicyHolder(policy, cache_dir=WORK / "compiled")
    holder.load()
    names = NameAddresses()
    address = ipaddress.ip_address("198.18.0.1")
    names.learn("h0.bench.example", (address,), 3600)
    gate = TlsGate(FilterContext(holder, FailSafe(), Clock(dt.datetime(2026, 11, 23, 9)), names=names))
    timings: dict[str, list[float]] = {"regular": [], "transparent": []}
    with taddons.context() as tctx:

        async def decide_all(transparent: bool) -> float:
            hellos = []
            for _ in range(calls):
                data = hello_data(tctx, "127.0.0.20", "h0.bench.example", server=(str(address), 443))
                if transparent:
                    data.context.client.proxy_mode = ProxyMode.parse("transparent")
                hellos.append(data)
            start = time.perf_counter()
            for data in hellos:
                pending = gate.tls_clienthello(data)
                if pending is not None:
                    await pending
            return time.perf_counter() - start

        for _ in range(5):  # interleaved, so both see the same machine
            for label, values in timings.items():
                values.append(asyncio.run(decide_all(label == "transparent")) / calls * 1e6)

    async def check_all() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            assert await names.has_address("h0.bench.example", address)
        return time.perf_counter() - start

    out = {label: min(values) for label, values in timings.items()}
    out["check"] = min(asyncio.run(check_all()) for _ in range(5)) / calls * 1e6
    assert gate.unverified == 0 and gate.counts["passthrough"] == 10 * calls
    start = time.perf_counter()
    for i in range(calls):
        names.learn(f"h{i}.bench.example", (address,), 300)
    out["learn"] = (time.perf_counter() - start) / calls * 1e6
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--names", type=int, default=20_000)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--pin", action="store_true",
                        help="resolver under test on CPU 1, load generator on CPU 0 (else both float)")
    args = parser.parse_args()
    if args.pin and os.cpu_count() and os.cpu_count() >= 2 and shutil.which("taskset"):
        PIN[:] = ["taskset", "-c", "1"]
        os.sched_setaffinity(0, {0})
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; "
          f"{platform.python_implementation()} {platform.python_version()}; pinned: {bool(PIN)}")
    for label, figures in resolver_figures(args).items():
        cached, uncached = figures["cached"], figures["uncached"]
        cpu = statistics.mean(figures["cached_cpu"])
        print(f"{label:10s} cached   {min(cached):8.0f} - {max(cached):8.0f} q/s   (resolver CPU {cpu:.0%} of a core)")
        print(f"{label:10s} uncached {min(uncached):8.0f} - {max(uncached):8.0f} q/s")
    tls = tls_check_figures(args.calls)
    print(f"TLS gate per ClientHello (best of 5): regular mode (no check) {tls['regular']:.1f} us, transparent "
          f"(destination checked against the resolver's answer) {tls['transparent']:.1f} us; the check alone "
          f"(a learnt name) {tls['check']:.2f} us; the resolver learning one answer {tls['learn']:.2f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
