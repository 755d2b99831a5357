"""Hostile requests: the worst one's cost against the median ordinary one's, in the engine and through the proxy.

    .venv/bin/python -m bench.bench_hostile [--urls 20000] [--repeat 5] [--requests 200] [--no-proxy]
                                            [--work /tmp/classgate-bench-hostile]

One student can send any URL and any Host; while the filter works on one request every other client of that
worker waits. Issue 8's target: no request costs more than ~10x the median. The policy is the engine
benchmark's (every UT1 folder a category, locked rules, a schedule, groups; bench/engine_data.py) with a small
adult stand-in, compiled with caches OFF so that every call does the full work (a hostile client never hits a
cache: each URL is new). Each hostile URL is decided `--repeat` times and its best time kept (the machine is
shared: the best of several is its cost, the rest is other people's load); the ordinary stream gives the
median and p99 of single decisions. CPU time (process_time) per call is printed beside wall time.

Through the proxy (what a waiting client feels): a real `classgate run` with the full UT1 policy (bench_proxy's),
a local HTTP origin, one keep-alive connection; the proxy's CPU time (/proc) over `--requests` ordinary requests
against the same number of each hostile kind, so the figure is CPU per request, whole request included.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from bench.bench_engine import load_stream
from bench.engine_data import make_document, make_tree

REPO = Path(__file__).resolve().parent.parent

STUDENT = "10.10.3.4"


def hostile_urls() -> dict[str, str]:
    """Each a class of request a client can craft to cost the filter time or memory (issue 8, part 8)."""
    segments = "/".join(f"s{i}" for i in range(8000))  # an 80 KB URL of many segments: blocked unparsed
    near_cap = "/".join(f"p{i}" for i in range(2700))  # ~16 KB, just under the cap: parsed and matched in full
    return {
        "80 KB URL, 8000 segments": f"http://example.com/{segments}",
        "16 KB URL, 2700 segments (under the cap)": f"http://example.com/{near_cap}"[:16000],
        "16 KB of '%2F' (encoded slashes)": "http://example.com/" + "a%2F" * 3990,
        "16 KB of '..%2F' dot segments": "http://example.com/" + "..%2F" * 3190,
        "16 KB of '//' (empty segments)": "http://example.com/" + "/" * 15900,
        "18 KB query of 2600 parameters (over the cap)": "http://example.com/s?" + "&".join(f"q{i}=x" for i in range(2600)),
        "15 KB query of 2000 parameters": "http://example.com/s?" + "&".join(f"q{i}=x" for i in range(2000)),
        "1000-byte host of 500 labels": "http://" + ".".join(["a"] * 490) + ".example.com/",
        "253-byte host of long labels": "http://" + ".".join(["x" * 60] * 4) + ".vn/",
        "IDN host, 60 labels of non-ASCII": "http://" + ".".join(["đánhbạc"] * 60) + ".vn/",
        "IPv4-mapped IPv6 address": "http://[::ffff:159.153.253.16]/a/b",
        "percent-encoded everything (16 KB)": "http://example.com/" + "%61" * 5300,
        "URL of a UT1 urls entry with // and %2F": "https://020sextoy.com//sk%2F",
    }


def _time(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Best wall and best CPU seconds of `repeat` calls."""
    walls, cpus = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--urls", type=int, default=20000, help="ordinary URLs for the median")
    parser.add_argument("--repeat", type=int, default=5, help="calls per hostile URL (best kept)")
    parser.add_argument("--adult", type=int, default=1000, help="generated adult/domains stand-in entries")
    parser.add_argument("--requests", type=int, default=200, help="requests of each kind through the proxy")
    parser.add_argument("--no-proxy", action="store_true", help="the engine part only")
    parser.add_argument("--work", type=Path, default=Path("/tmp/classgate-bench-hostile"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    from classgate.policies.engine import compile_policy

    tree = make_tree(args.work, args.adult)
    urls, clients = load_stream(args.work, tree, args.urls)
    policy = compile_policy(make_document(tree), args.work / "compiled", cache_size=0)
    ordinary = []
    for u, c in zip(urls, clients):
        t = time.perf_counter()
        policy.decide(u, c)
        ordinary.append(time.perf_counter() - t)
    ordinary.sort()
    median = statistics.median(ordinary)
    p99 = ordinary[int(len(ordinary) * 0.99)]
    print(f"machine: {platform.node()} {platform.machine()} python {platform.python_version()}")
    print(f"policy: {policy.stats.list_entries:,} list entries; caches off")
    print(f"ordinary: {len(ordinary):,} URLs, median {median * 1e6:.1f} us, p99 {p99 * 1e6:.1f} us, "
          f"max {ordinary[-1] * 1e6:.1f} us")
    print(f"{'hostile request':44} {'action':7} {'tier':8} {'wall us':>9} {'cpu us':>9} {'x median':>9}")
    worst = 0.0
    for name, url in hostile_urls().items():
        d = policy.decide(url, STUDENT)
        wall, cpu = _time(lambda url=url: policy.decide(url, STUDENT), args.repeat)
        worst = max(worst, wall / median)
        print(f"{name:44} {d.action:7} {d.tier:8} {wall * 1e6:9.1f} {cpu * 1e6:9.1f} {wall / median:9.1f}")
    print(f"worst hostile request: {worst:.1f}x the median ordinary one (target: within ~10x)")
    if not args.no_proxy:
        through_proxy(args.work, args.requests)


def _origin() -> tuple[object, int]:
    """A local origin answering every GET with 200 and a short body (HTTP/1.1 keep-alive)."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    http.server.ThreadingHTTPServer.allow_reuse_address = True
    server = http.server.ThreadingHTTPServer(("127.0.0.50", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def _requests_cpu(proxy_pid: int, port: int, targets: list[str]) -> tuple[float, dict[int, int]]:
    """Proxy CPU seconds per request over `targets`: absolute-form GETs, written as raw UTF-8 bytes (a client
    need not encode an IDN host), on one keep-alive connection (a new one when the proxy closes it)."""
    import http.client
    import socket

    from bench.bench_proxy import cpu_seconds

    statuses: dict[int, int] = {}
    sock: socket.socket | None = None
    before = cpu_seconds(proxy_pid)
    for target in targets:
        host = target.split("/", 3)[2]
        try:
            if sock is None:
                sock = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=("127.0.0.3", 0))
            sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            response = http.client.HTTPResponse(sock)
            response.begin()
            response.read()
            statuses[response.status] = statuses.get(response.status, 0) + 1
            if response.will_close:
                sock.close()
                sock = None
        except (OSError, http.client.HTTPException):
            statuses[0] = statuses.get(0, 0) + 1
            if sock is not None:
                sock.close()
            sock = None
    if sock is not None:
        sock.close()
    return (cpu_seconds(proxy_pid) - before) / len(targets), statuses


def through_proxy(work: Path, n: int) -> None:
    import os

    from bench.bench_proxy import start_proxy, stop, traffic_hosts, ut1_policy

    server, origin_port = _origin()
    policy = work / "ut1-policy.yaml"
    policy.write_text(ut1_policy(work) + "local_services: [127.0.0.50]\n", encoding="utf-8")
    env = dict(os.environ, CLASSGATE_TEST_ORIGIN_HTTP=str(origin_port), CLASSGATE_TEST_ORIGIN_HTTPS=str(origin_port))
    proc, port, _metrics = start_proxy("classgate", work, (0, 0, 0), policy, env=env,
                                       extra=["--set", f"scripts={REPO / 'tests' / 'proxy' / 'proxytest_redirect.py'}"])
    try:
        hosts = traffic_hosts(200)
        _requests_cpu(proc.pid, port, [f"http://{h}/" for h in hosts[:20]])  # warm-up
        ordinary, statuses = _requests_cpu(proc.pid, port, [f"http://{hosts[i % len(hosts)]}/p/{i}" for i in range(n)])
        print(f"\nthrough `classgate run` (full UT1 policy): ordinary request {ordinary * 1e3:.2f} ms proxy CPU "
              f"{dict(sorted(statuses.items()))}")
        print(f"{'hostile request':44} {'statuses':18} {'ms CPU':>8} {'x ordinary':>11}")
        worst = 0.0
        for name, url in hostile_urls().items():
            # The same kind, made distinct per request (a new host label) so that no cache answers it.
            targets = [url.replace("://", f"://r{i}.", 1) if "[" not in url else url for i in range(n)]
            cpu, statuses = _requests_cpu(proc.pid, port, targets)
            worst = max(worst, cpu / ordinary)
            print(f"{name:44} {dict(sorted(statuses.items()))!s:18} {cpu * 1e3:8.2f} {cpu / ordinary:11.1f}")
        print(f"worst hostile request through the proxy: {worst:.1f}x an ordinary one's CPU (target: within ~10x)")
    finally:
        stop(proc)
        server.shutdown()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
