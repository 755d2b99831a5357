"""Cost of classgate's metrics: proxy requests/s with metrics on vs off, measured in the same run.

    .venv/bin/python -m bench.bench_metrics [--requests 1000] [--rounds 10] [--clients 4]

Three measurements:
  bridge   the per-request metrics work alone (record_request + observe_decision + topsites.observe),
           in microseconds, against the same loop doing nothing (the baseline);
  scrape   time to render /metrics for the big policy (all UT1 categories, 20 groups, every series);
  proxy    the real filtering proxy (agent.commands.run's start-up, the sample Department policy) run
           twice side by side: with metrics (UsageMetrics addon, counters, top sites, the /metrics
           server scraped every SCRAPE_INTERVAL s, as Prometheus would) and without (no Metrics object at all). Keep-alive
           clients on 127.0.0.x send each request of the mix to both, interleaved request by request
           (random order), so background load on a shared machine hits both alike. Per round:
           requests/s of each (clients / mean latency) and the proxy process's CPU time per request
           (/proc); the figures are the medians of the per-round on/off ratios (target >= 0.98).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SAMPLE_POLICY = REPO / "policies" / "samples" / "department.yaml"
BODY = b"x" * 2000
# Prometheus' default scrape interval (the school agent config uses 30 s). Scraping every second
# would charge a 30x Prometheus load to the few hundred requests of each round.
SCRAPE_INTERVAL = 15.0


def machine() -> str:
    model = "?"
    try:
        for line in subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=False
        ).stdout.splitlines():
            if line.startswith("Model name"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"nproc={os.cpu_count()}, CPU={model}, RAM={mem:.0f} GiB, Python {platform.python_version()}"


def request_mix(n: int, seed: int = 1) -> list[str]:
    """Hosts as a school's traffic looks: a few popular sites, listed ones, and a long tail."""
    rng = random.Random(seed)
    listed = []
    for name in ("games", "social_networks", "gambling", "bank"):
        path = SAMPLE_POLICY.parent / "lists" / "ut1" / name / "domains"
        listed += [f"www.{d}" for d in path.read_text().split() if d and not d.startswith("#")]
    popular = ["www.google.com", "vnexpress.net", "olm.vn", "hocmai.vn", "www.youtube.com", "zalo.me"]
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.5:
            out.append(rng.choice(popular))
        elif r < 0.7:
            out.append(rng.choice(listed))
        else:
            out.append(f"www.site{rng.randrange(5000)}.example")
    return out


# -- bridge: the per-request metrics calls --------------------------------------------------------


def bench_bridge(n: int = 200_000) -> tuple[float, float]:
    from classgate.proxy.metric_labels import gateway_metrics

    m = gateway_metrics()
    m.set_policy(
        "v",
        time.time(),
        ["adult", "gambling", "security", "circumvention", "social", "games", "education", "banking"],
        ["teachers", "students", "phones"],
        "file",
    )
    hosts = request_mix(n)
    cats = ["uncategorized", "social", "games", "education", "adult"]
    groups = ["students", "teachers", "default"]
    clients = [f"10.10.{i // 250}.{i % 250}" for i in range(600)]
    work = [
        (cats[i % 5], groups[i % 3], "block" if i % 7 == 0 else "allow", hosts[i], clients[i % 600])
        for i in range(n)
    ]

    def baseline() -> float:
        t = time.perf_counter()
        for cat, grp, action, host, client in work:
            pass
        return time.perf_counter() - t

    def bridge() -> float:
        t = time.perf_counter()
        for cat, grp, action, host, client in work:
            m.record_request(cat, grp, action, "department", 300, 20_000)
            m.observe_decision(0.00004)
            m.topsites.observe(cat, host, client)
        return time.perf_counter() - t

    bridge()  # warm the label and PSL caches
    base = min(baseline() for _ in range(3))
    cost = min(bridge() for _ in range(3))
    return base / n * 1e6, cost / n * 1e6


def bench_scrape() -> tuple[int, float]:
    from prometheus_client import generate_latest

    from classgate.policies.vocabulary import ACTIONS, TIERS
    from classgate.proxy.metric_labels import gateway_metrics

    ut1 = [p.name for p in (REPO.parent / "shared" / "data" / "ut1").iterdir() if p.is_dir()] or [
        f"cat{i}" for i in range(69)
    ]
    groups = [f"group{i}" for i in range(20)]
    m = gateway_metrics()
    m.set_policy("v", time.time(), ut1, groups, "file")
    for cat in [*ut1, "uncategorized"]:
        for grp in [*groups, "default"]:
            for action in ACTIONS:
                m.record_request(cat, grp, action, TIERS[0], 1, 1)
    text = generate_latest(m.registry)
    series = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))
    t = time.perf_counter()
    for _ in range(20):
        generate_latest(m.registry)
    return series, (time.perf_counter() - t) / 20


# -- proxy: the real gateway with and without metrics ----------------------------------------------


def serve_proxy(metrics_on: bool, port: int, metrics_port: int, state: Path) -> None:
    """Child process: the gateway as `classgate run` starts it, with or without a Metrics."""
    from classgate.agent.commands.run import _serve
    from classgate.agent.gateway import GatewayConfig, build_gateway
    from classgate.proxy.address import Address

    gateway = build_gateway(GatewayConfig(
        policy=SAMPLE_POLICY, state_dir=state, listen=Address("127.0.0.1", port),
        metrics=Address("127.0.0.1", metrics_port) if metrics_on else None, count_usage=metrics_on,
    ))
    try:
        asyncio.run(_serve(gateway))
    finally:
        gateway.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Origin:
    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = -1  # one write per response (no Nagle stall)

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(BODY)))
                self.end_headers()
                self.wfile.write(BODY)

            def log_message(self, *a: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def load(ports: dict[str, int], origin_port: int, hosts: list[str], clients: int) -> dict[str, float]:
    """Every host through both proxies, interleaved request by request from `clients` keep-alive
    devices, so both see the same background load. Returns the summed request latency per proxy."""
    latency = {mode: 0.0 for mode in ports}
    lock = threading.Lock()

    def device(k: int) -> None:
        rng = random.Random(k)
        conns: dict[str, http.client.HTTPConnection | None] = dict.fromkeys(ports)
        mine = dict.fromkeys(ports, 0.0)
        for host in hosts[k::clients]:
            order = list(ports)
            rng.shuffle(order)  # neither proxy always goes first
            for mode in order:
                t = time.perf_counter()
                for _ in range(2):
                    conn = conns[mode]
                    if conn is None:
                        conn = conns[mode] = http.client.HTTPConnection(
                            "127.0.0.1", ports[mode], timeout=30, source_address=(f"127.0.0.{10 + k}", 0)
                        )
                    try:
                        conn.request("GET", f"http://127.0.0.1:{origin_port}/p", headers={"Host": host})
                        r = conn.getresponse()
                        r.read()
                        if r.getheader("Connection", "").lower() == "close":
                            conn.close()
                            conns[mode] = None
                        break
                    except (http.client.HTTPException, OSError):
                        conn.close()
                        conns[mode] = None
                mine[mode] += time.perf_counter() - t
        for conn in conns.values():
            if conn is not None:
                conn.close()
        with lock:
            for mode, seconds in mine.items():
                latency[mode] += seconds

    threads = [threading.Thread(target=device, args=(k,)) for k in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return latency


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc): robust to other load on the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_proxy(requests: int, rounds: int, clients: int) -> dict[str, list[float]]:
    import tempfile

    origin = Origin()
    procs, ports, metric_ports = {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="classgate-bench-metrics-") as tmp:
        for mode in ("off", "on"):
            ports[mode], metric_ports[mode] = free_port(), free_port()
            procs[mode] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.bench_metrics",
                    "--serve",
                    mode,
                    str(ports[mode]),
                    str(metric_ports[mode]),
                    str(Path(tmp) / mode),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        stop = threading.Event()

        def scraper() -> None:  # Prometheus' load on the "on" gateway
            while not stop.wait(SCRAPE_INTERVAL):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{metric_ports['on']}/metrics", timeout=5).read()
                except OSError:
                    pass

        try:
            for mode in ("off", "on"):
                deadline = time.time() + 60
                while True:
                    try:
                        socket.create_connection(("127.0.0.1", ports[mode]), 1).close()
                        break
                    except OSError:
                        if time.time() > deadline or procs[mode].poll() is not None:
                            raise SystemExit(f"the {mode} proxy did not start")
                        time.sleep(0.2)
            threading.Thread(target=scraper, daemon=True).start()
            hosts = request_mix(requests, seed=2)
            load(ports, origin.port, hosts[:300], clients)  # warm-up: caches, first connections
            results: dict[str, list[float]] = {
                "latency": [],
                "cpu": [],
                "rps_off": [],
                "rps_on": [],
                "cpu_off": [],
            }
            for r in range(rounds):
                cpu = {mode: cpu_seconds(procs[mode].pid) for mode in procs}
                latency = load(ports, origin.port, hosts, clients)
                used = {mode: (cpu_seconds(procs[mode].pid) - cpu[mode]) / len(hosts) for mode in procs}
                # Throughput at a fixed number of clients is clients / mean latency.
                rps = {mode: clients * len(hosts) / latency[mode] for mode in latency}
                results["rps_off"].append(rps["off"])
                results["rps_on"].append(rps["on"])
                results["latency"].append(rps["on"] / rps["off"])
                results["cpu"].append(used["off"] / used["on"])
                results["cpu_off"].append(used["off"])
                print(
                    f"  round {r + 1:>2}: off {rps['off']:6.1f} req/s {used['off'] * 1000:.3f} ms CPU/req | "
                    f"on {rps['on']:6.1f} req/s {used['on'] * 1000:.3f} ms CPU/req | "
                    f"on/off {results['latency'][-1]:.3f} (req/s), {results['cpu'][-1]:.3f} (CPU)",
                    flush=True,
                )
            return results
        finally:
            stop.set()
            for p in procs.values():
                p.terminate()
                p.wait(timeout=15)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        mode, port, metrics_port, state = sys.argv[2:6]
        serve_proxy(mode == "on", int(port), int(metrics_port), Path(state))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1000, help="requests per round and mode")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=4, help="concurrent keep-alive devices")
    args = parser.parse_args()

    print(f"machine: {machine()}")
    base_us, bridge_us = bench_bridge()
    print(f"bridge:  {bridge_us:.2f} us per request for the metrics calls (empty loop {base_us:.2f} us)")
    series, seconds = bench_scrape()
    print(
        f"scrape:  {series} series (69 UT1 categories x 20 groups, every combination): "
        f"{seconds * 1000:.1f} ms per /metrics render"
    )
    print(
        f"proxy:   {args.requests} requests x {args.rounds} rounds per mode, {args.clients} clients, "
        f"sample Department policy"
    )
    results = bench_proxy(args.requests, args.rounds, args.clients)
    off, on = statistics.median(results["rps_off"]), statistics.median(results["rps_on"])
    print(
        f"proxy:   median req/s off {off:.1f}, on {on:.1f}; median per-round ratio on/off = "
        f"{statistics.median(results['latency']):.3f} (req/s), {statistics.median(results['cpu']):.3f} "
        f"(proxy CPU per request, off/on)"
    )
    cpu_off = statistics.median(results["cpu_off"])
    print(f"         bridge cost / proxy CPU per request (off): {bridge_us / (cpu_off * 1e6) * 100:.2f} %")


if __name__ == "__main__":
    main()
