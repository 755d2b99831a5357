"""Every core: `classgate run --workers 1` against `--workers 2`, under native load, with the full UT1 policy.

    .venv/bin/python -m bench.bench_workers [--seconds 12] [--rounds 3] [--concurrency 50,100]

bench_proxy.py's load client and origin are Python asyncio processes: on this 2-core machine they take a
large share of the CPU that a second worker would scale into, so its 2-worker rows measure the machine as
much as the gateway. Here the load is native and cheap per request, and the workers get what it leaves:
- HTTP keep-alive: wrk (C, epoll, one thread), absolute-form requests over `concurrency` keep-alive
  connections to the proxy, the Host header cycling over 200 hosts (half in UT1's press list, half in no
  list), as bench_proxy's;
- HTTPS, a new intercepted connection per request: curl (one process, `--parallel`), CONNECT to the origin's
  address, SNI one of the same hosts (`--connect-to`), `Connection: close`, from the teachers' address (an
  inspected group: the gateway makes a certificate and speaks TLS both ways);
- HTTPS passed through, a new connection per request: the same curl, from the guests' address (not
  inspected), SNI `localhost` (a passthrough goes only to an address of its SNI name): the gateway decides
  the ClientHello and relays the bytes; the TLS is curl's and nginx's;
- origin: nginx, one worker process, a 2 KB body (as bench_proxy's origin).
The two gateways alternate in `rounds` slices per mode, so machine noise falls on both. Prints req/s, the
proxy's CPU per request (supervisor and workers, /proc), the load's and the origin's CPU share, and the
2 workers / 1 worker ratios. Needs ../shared/data/ut1, wrk, curl and nginx (Debian packages).

`--worker-cpu Q` puts each worker in a cgroup of its own with a CPU quota of Q cores (cgroup v1 `cpu` or
v2 `cpu.max`; root): with 2Q plus the load's share under the machine's cores, a worker gets the same CPU
with 1 or 2 workers, as on a gateway with a core per worker and the load elsewhere. The ratio then measures
what the workers share (the kernel's SO_REUSEPORT spread, the memory-mapped index, the state dir), not the
load's share of 2 cores.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench.bench_proxy import (
    GUEST,
    TEACHER,
    UT1,
    cpu_seconds,
    free_port,
    machine,
    start_proxy,
    stop,
    traffic_hosts,
    ut1_policy,
)
from bench.proxyload import BODY, make_cert

KINDS = ("classgate", "classgate-w2")  # bench_proxy's names: --workers 1, --workers 2
LABEL = {"classgate": "1 worker", "classgate-w2": "2 workers"}
MODES = ("http-keepalive", "https-newconn", "https-passthrough")


@dataclass
class Slice:
    ok: int = 0
    seconds: float = 0.0
    proxy_cpu: float = 0.0
    load_cpu: float = 0.0
    origin_cpu: float = 0.0
    errors: int = 0

    def add(self, other: Slice) -> None:
        for name in ("ok", "seconds", "proxy_cpu", "load_cpu", "origin_cpu", "errors"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def start_nginx(work: Path, cert: Path, key: Path) -> tuple[subprocess.Popen, int, int]:
    http_port, https_port = free_port(), free_port()
    conf = work / "nginx.conf"
    conf.write_text(f"""\
worker_processes 1;
user root;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {work}/nginx-tmp;
    server {{
        listen 127.0.0.1:{http_port} backlog=4096;
        listen 127.0.0.1:{https_port} ssl backlog=4096;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{ default_type text/plain; return 200 "{BODY.decode()}"; }}
    }}
}}
""", encoding="utf-8")
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(work)], stderr=subprocess.STDOUT,
                            stdout=open(work / "nginx.out", "wb"))  # noqa: SIM115 - open for the process's life
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", http_port), timeout=0.5).close()
            return proc, http_port, https_port
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nginx did not start: {(work / 'nginx-error.log').read_text(errors='replace')}")


class WorkerQuotas:
    """A CPU quota per worker process: one cgroup each, removed (processes moved back) by `release`."""

    V1, V2 = Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup")

    def __init__(self, cores: float) -> None:
        self.cores = cores
        self.made: list[tuple[Path, Path]] = []  # (group, the root it came from)
        controllers = self.V2 / "cgroup.controllers"
        if (self.V1 / "cpu.cfs_quota_us").exists():
            self.root = self.V1
        elif controllers.exists() and "cpu" in controllers.read_text().split():
            self.root = self.V2
        else:
            raise SystemExit("--worker-cpu needs the cgroup cpu controller (v1 /sys/fs/cgroup/cpu or v2 cpu.max)")

    def limit(self, name: str, pid: int) -> None:
        group = self.root / f"classgate-bench-{name}"
        group.mkdir(exist_ok=True)
        period = 100_000
        quota = int(self.cores * period)
        if self.root == self.V1:
            (group / "cpu.cfs_period_us").write_text(str(period))
            (group / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            (group / "cpu.max").write_text(f"{quota} {period}")
        (group / "cgroup.procs").write_text(str(pid))
        self.made.append((group, self.root))

    def release(self) -> None:
        for group, root in self.made:
            for pid in (group / "cgroup.procs").read_text().split():
                try:
                    (root / "cgroup.procs").write_text(pid)
                except OSError:
                    pass  # it ended meanwhile
            group.rmdir()
        self.made.clear()


def _workers(supervisor: int) -> list[int]:
    """The supervisor's worker processes: its direct children (a worker's own children inherit its cgroup)."""
    return [int(pid) for task in Path(f"/proc/{supervisor}/task").iterdir()
            for pid in (task / "children").read_text().split()]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wrk_script(work: Path, hosts: list[str], origin_port: int) -> Path:
    script = work / "absolute-form.lua"
    names = ", ".join(f'"{h}"' for h in hosts)
    script.write_text(f"""\
-- Absolute-form requests to the origin through the proxy (wrk connects to the proxy, the URL's host).
local hosts = {{{names}}}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "http://127.0.0.1:{origin_port}/", {{["Host"] = hosts[(i % #hosts) + 1]}})
end
""", encoding="utf-8")
    return script


def run_wrk(proxy_port: int, script: Path, concurrency: int, seconds: float) -> tuple[int, int, float]:
    """(responses, errors, seconds) of one bounded wrk run."""
    out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:.0f}s", "--timeout", "5s", "-s",
                          str(script), f"http://127.0.0.1:{proxy_port}/"],
                         capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    total = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    if total is None:
        raise SystemExit(f"unexpected wrk output:\n{out}")
    took = float(total.group(2)) / (1000 if total.group(3) == "ms" else 1)
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    bad = int(non2xx.group(1)) if non2xx else 0
    return int(total.group(1)) - bad, errors + bad, took


def run_curl(proxy_port: int, work: Path, hosts: list[str], origin_tls: int, concurrency: int,
             count: int, source: str = TEACHER) -> tuple[int, int, float]:
    """(200 responses, other outcomes, seconds) of `count` HTTPS requests, each on a new connection, from
    `source`; a host other than localhost is sent to the origin's address (`connect-to`)."""
    config = work / "curl-urls.txt"
    lines = []
    for i in range(count):
        host = hosts[i % len(hosts)]
        lines += [f'url = "https://{host}:{origin_tls}/"', 'output = "/dev/null"']
        if host != "localhost":
            lines.append(f'connect-to = "{host}:{origin_tls}:127.0.0.1:{origin_tls}"')
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    started = time.monotonic()
    out = subprocess.run(["curl", "-s", "-k", "--proxy", f"http://127.0.0.1:{proxy_port}", "--interface", source,
                          "--parallel", "--parallel-immediate", "--parallel-max", str(concurrency),
                          "-H", "Connection: close", "--max-time", "10", "-w", "%{http_code}\\n", "-K", str(config)],
                         capture_output=True, text=True, timeout=300, check=False).stdout
    took = time.monotonic() - started
    codes = out.split()
    ok = codes.count("200")
    return ok, count - ok, took


def one_slice(kind: str, proc: subprocess.Popen, port: int, mode: str, concurrency: int, args, work: Path,
              hosts: list[str], origin: tuple[subprocess.Popen, int, int], script: Path) -> Slice:
    nginx, _, origin_tls = origin
    proxy0, load0, origin0 = cpu_seconds(proc.pid), _children_cpu(), cpu_seconds(nginx.pid)
    if mode == "http-keepalive":
        ok, errors, took = run_wrk(port, script, concurrency, args.seconds / args.rounds)
    else:
        # A count sized to the slice at the rate the first slice measured (or a first guess).
        guess = (120.0 if kind == "classgate" else 200.0) * (3 if mode == "https-passthrough" else 1)
        rate = args.newconn_rate.get((kind, mode, concurrency), guess)
        passthrough = mode == "https-passthrough"
        ok, errors, took = run_curl(port, work, ["localhost"] if passthrough else hosts, origin_tls, concurrency,
                                    max(50, int(rate * args.seconds / args.rounds)),
                                    source=GUEST if passthrough else TEACHER)
        if took:
            args.newconn_rate[(kind, mode, concurrency)] = ok / took
    return Slice(ok, took, cpu_seconds(proc.pid) - proxy0, _children_cpu() - load0,
                 cpu_seconds(nginx.pid) - origin0, errors)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=12.0, help="per gateway and mode, over all rounds")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", default="50,100", help="comma-separated: connections (wrk), transfers (curl)")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--work", type=Path, default=Path("/tmp/classgate-bench-workers"))
    ap.add_argument("--worker-cpu", type=float, default=0.0,
                    help="CPU quota per worker process, in cores (cgroups; 0: none): see the module docstring")
    args = ap.parse_args()
    args.newconn_rate = {}
    missing = [tool for tool in ("wrk", "curl", "nginx") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: apt-get install wrk curl nginx-light")
    if not UT1.is_dir():
        raise SystemExit(f"UT1 data not found at {UT1}")
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    (work / "nginx-tmp").mkdir(exist_ok=True)
    cert, key = make_cert(work / "origin")
    origin = start_nginx(work, cert, key)
    hosts = traffic_hosts()
    script = wrk_script(work, hosts, origin[1])
    policy = work / "policy.yaml"
    policy.write_text(ut1_policy(work), encoding="utf-8")
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f}"
          + (f"; each worker limited to {args.worker_cpu} cores" if args.worker_cpu else ""))
    quotas = WorkerQuotas(args.worker_cpu) if args.worker_cpu else None
    gateways: dict[str, tuple[subprocess.Popen, int]] = {}
    results: dict[tuple[str, str, int], Slice] = {}
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    try:
        ports = (origin[1], origin[2], origin[2])
        for kind in KINDS:
            proc, port, _ = start_proxy(kind, work, ports, policy)
            gateways[kind] = (proc, port)
            if quotas is not None:
                # `--workers 1` serves in the process itself; with more, the supervisor's children serve.
                for n, worker in enumerate(_workers(proc.pid) if kind == "classgate-w2" else [proc.pid]):
                    quotas.limit(f"{kind}-{n}", worker)
            run_wrk(port, script, 10, 1)  # warm-up: policy caches, connections
        modes = [m for m in args.modes.split(",") if m in MODES]
        for mode in modes:
            for c in concurrencies:
                for i in range(args.rounds):
                    for kind in (KINDS if i % 2 == 0 else tuple(reversed(KINDS))):
                        proc, port = gateways[kind]
                        results.setdefault((kind, mode, c), Slice()).add(
                            one_slice(kind, proc, port, mode, c, args, work, hosts, origin, script))
    finally:
        for proc, _ in gateways.values():
            stop(proc)
        if quotas is not None:
            quotas.release()
        origin[0].terminate()
        origin[0].wait(10)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}\n")
    print("| mode | conc. | gateway | req/s | proxy CPU ms/req | proxy cores | load + origin cores | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for mode in modes:
        for c in concurrencies:
            for kind in KINDS:
                r = results[(kind, mode, c)]
                print(f"| {mode} | {c} | {LABEL[kind]} | {r.rate:.0f} | {1000 * r.proxy_cpu / max(r.ok, 1):.2f} | "
                      f"{r.proxy_cpu / r.seconds:.2f} | {(r.load_cpu + r.origin_cpu) / r.seconds:.2f} | {r.errors} |")
    if "https-newconn" in modes and "https-passthrough" in modes:
        for c in concurrencies:
            for kind in KINDS:
                inter, passed = results[(kind, "https-newconn", c)], results[(kind, "https-passthrough", c)]
                cpu_inter = inter.proxy_cpu / max(inter.ok, 1)
                cpu_passed = passed.proxy_cpu / max(passed.ok, 1)
                print(f"passthrough / intercepted new connections, {LABEL[kind]} c={c}: "
                      f"{passed.rate / max(inter.rate, 1e-9):.2f}x by rate, "
                      f"{cpu_inter / max(cpu_passed, 1e-12):.2f}x by proxy CPU per connection")
    for mode in modes:
        for c in concurrencies:
            one, two = results[("classgate", mode, c)], results[("classgate-w2", mode, c)]
            print(f"2 workers / 1 worker, {mode} c={c}: {two.rate / max(one.rate, 1e-9):.2f}x by rate, "
                  f"{(1000 * two.proxy_cpu / max(two.ok, 1)) / max(1000 * one.proxy_cpu / max(one.ok, 1), 1e-9):.2f}x "
                  "the CPU per request")


if __name__ == "__main__":
    main()
