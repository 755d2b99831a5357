"""Proxy throughput and latency: bare mitmdump vs classgate with the full UT1 policy, side by side.

    .venv/bin/python -m bench.bench_proxy [--seconds 8] [--concurrency 10,50] [--no-reload]
        [--proxies bare,classgate,classgate-mitmdump,classgate-w2]

Proxies (--proxies): bare (mitmdump, no addon of ours), classgate (`classgate run --workers 1`: the lean
master, agent/master.py), classgate-mitmdump (the same addons on mitmproxy's DumpMaster and its default
addons: `mitmdump -s agent/mitmdump_script.py`, what `classgate run` used to be), classgate-w2 (`classgate
run --workers 2`: two workers on one port). Proxy CPU is the process tree's (supervisor and workers).

Per proxy and mode, a bounded run (--seconds) at each concurrency: HTTP keep-alive, HTTPS keep-alive
(intercepted), HTTPS with a new connection per request (intercepted), HTTPS passthrough (new
connection per request, SNI localhost; classgate: a group without the school CA; bare: --ignore-hosts),
passthrough downloads (keep-alive passthrough connections, each request 1 MiB: req/s is MiB/s, CPU per
request is per MiB). Prints req/s, p50/p99 latency and classgate/bare ratios. Then the reload check: classgate under HTTP load
while its policy is reloaded (same lists: index from cache; changed lists: full recompile), with a
loop-lag probe in the proxy process (bench/proxy_looplag_probe.py): the longest event-loop stall and
the requests that failed during each reload.

Needs ../shared/data/ut1 beside the repo. Work files go to /tmp/classgate-bench-proxy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
from bench.proxyload import Result, load, make_cert, run_origin

UT1 = REPO.parent / "shared" / "data" / "ut1"
BIN = Path(sys.executable).parent
TEACHER, GUEST = "127.0.0.2", "127.0.0.4"
MODES = ("http-keepalive", "https-keepalive", "https-newconn", "https-passthrough", "passthrough-bulk")
PROXIES = ("bare", "classgate", "classgate-mitmdump", "classgate-w2")
HARMFUL = ("adult", "gambling", "malware", "phishing", "agressif", "drogue", "hacking", "warez", "dating",
           "mixed_adult", "cryptojacking")


def ut1_policy(work: Path, extra_domain: str | None = None) -> str:
    cats = sorted(p.name for p in UT1.iterdir() if p.is_dir() and ((p / "domains").exists() or (p / "urls").exists()))
    lines = ["classgate: 1", "name: bench-ut1", "timezone: Asia/Ho_Chi_Minh",
             f"sources: {{ut1: {{format: ut1, path: {UT1}}}}}", "categories:"]
    for c in cats:
        inline = f", domains: [{extra_domain}]" if extra_domain and c == "gambling" else ""
        lines.append(f"  {c}: {{include: [ut1/{c}]{inline}}}")
    lines += [
        "groups:", "  teachers: {networks: [127.0.0.2/32]}", "  students: {networks: [127.0.0.3/32]}",
        "  guests: {networks: [127.0.0.4/32]}",
        "schedules:", "  class_hours:", '    - {days: mon-fri, from: "07:00", to: "17:00"}',
        "rules:",
        f"  - {{name: harmful, action: block, categories: [{', '.join(c for c in HARMFUL if c in cats)}], locked: true}}",
        "  - {name: focus, action: block, groups: [students], when: class_hours, categories: [games, social_networks]}",
        "  - {name: no-shorts, action: block, urls: [youtube.com/shorts]}",
        "default: allow",
        "safe_search: {google: strict, bing: strict, duckduckgo: strict, youtube: strict}",
        "tls: {inspect_groups: [teachers, students], never_decrypt: [bank]}",
        'block_page: {contact: "bench", language: vi}',
        "local_services: [127.0.0.1]   # the bench origin stands for the Internet",
    ]
    return "\n".join(lines) + "\n"


def traffic_hosts(n: int = 200) -> list[str]:
    """Allowed hosts: half from UT1 `press` (found in the index), half in no list at all."""
    press = [ln.strip() for ln in (UT1 / "press" / "domains").read_text().splitlines()
             if ln.strip() and not ln.startswith("#") and not ln[0].isdigit()]
    return [f"www.{d}" for d in press[: n // 2]] + [f"site{i}.truong{i % 17}.edu.vn" for i in range(n - n // 2)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"process exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"port {port} never opened")


def start_proxy(kind: str, work: Path, ports: tuple[int, int, int], policy: Path | None = None,
                extra: list[str] | None = None, env: dict | None = None) -> tuple[subprocess.Popen, int, int]:
    port, metrics_port = free_port(), free_port()
    log = open(work / f"{kind}-{port}.log", "wb")  # noqa: SIM115 - open for the process's life
    if kind == "bare":
        cmd = [str(BIN / "mitmdump"), "-q", "--listen-host", "127.0.0.1", "--listen-port", str(port),
               "--set", f"confdir={work / 'bare-conf'}", "--set", "connection_strategy=lazy",
               "--set", "ssl_insecure=true", "--ignore-hosts", rf"^127\.0\.0\.1:{ports[2]}$"]
    elif kind == "classgate-mitmdump":
        state = work / "state"
        cmd = [str(BIN / "mitmdump"), "-q", "--listen-host", "127.0.0.1", "--listen-port", str(port),
               "-s", str(REPO / "agent" / "mitmdump_script.py"), "--set", f"classgate_policy={policy}",
               "--set", f"classgate_state_dir={state}", "--set", f"confdir={state / 'ca'}",
               "--set", f"classgate_metrics=127.0.0.1:{metrics_port}", "--set", "connection_strategy=lazy",
               "--set", "onboarding=false", "--set", "stream_large_bodies=4m", "--set", "ssl_insecure=true"]
    else:
        workers = "2" if kind == "classgate-w2" else "1"
        cmd = [str(BIN / "classgate"), "run", "--policy", str(policy), "--listen", f"127.0.0.1:{port}",
               "--metrics", f"127.0.0.1:{metrics_port}", "--state-dir", str(work / "state"),
               "--workers", workers, "--set", "ssl_insecure=true", *(extra or [])]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    wait_port(port, proc)
    if kind == "classgate-w2":  # the port opens with the first worker: wait for the second one too
        deadline = time.monotonic() + 120
        while len(_descendants(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)
    return proc, port, metrics_port


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                kids = [int(x) for x in (task / "children").read_text().split()]
                out += kids
                todo += kids
        except OSError:
            continue
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its live descendants (workers), from Linux /proc.

    A child's time is read while it lives (a worker keeps running); children that ended (the policy
    compile) count through the parent's cutime/cstime once reaped."""
    total = 0.0
    for p in [pid, *_descendants(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def one_run(proc: subprocess.Popen, port: int, mode: str, c: int, ports, hosts, seconds: float) -> tuple[Result, float]:
    cpu0 = [cpu_seconds(proc.pid)]

    def ready() -> None:  # keep-alive: connections are open, measure from here
        cpu0[0] = cpu_seconds(proc.pid)

    if mode == "https-passthrough":
        # The connection goes to 127.0.0.1, so its SNI must be a name that resolves there: classgate passes a
        # connection through only to an address of its SNI name (proxy/addons/tls_gate.py). The lookup is
        # cached (60 s), as it mostly is on a gateway where the same sites come back all day.
        r = asyncio.run(load("https-newconn", port, (ports[0], ports[2]), ["localhost"], GUEST, c, seconds, ready))
    elif mode == "passthrough-bulk":
        r = asyncio.run(load("https-bulk", port, (ports[0], ports[2]), ["localhost"], GUEST, c, seconds, ready))
    else:
        r = asyncio.run(load(mode, port, (ports[0], ports[1]), hosts, TEACHER, c, seconds, ready))
    return r, cpu_seconds(proc.pid) - cpu0[0]


def run_modes(proxies: dict, ports, hosts, seconds: float, concurrency: list[int], rounds: int,
              modes: tuple[str, ...] = MODES) -> dict:
    """Every (mode, concurrency) alternates bare and classgate in `rounds` slices of seconds/rounds,
    so load from elsewhere on the machine falls on both alike."""
    out: dict = {}
    for kind, (proc, port) in proxies.items():
        asyncio.run(load("http-keepalive", port, (ports[0], ports[1]), hosts, TEACHER, 10, 1.0))  # warm-up
    for mode in modes:
        for c in concurrency:
            for i in range(rounds):
                order = list(proxies) if i % 2 == 0 else list(reversed(proxies))
                for kind in order:
                    proc, port = proxies[kind]
                    r, cpu = one_run(proc, port, mode, c, ports, hosts, seconds / rounds)
                    acc = out.setdefault((kind, mode, c), [Result(), 0.0])
                    a = acc[0]
                    a.ok += r.ok
                    a.errors += r.errors
                    a.latencies += r.latencies
                    a.seconds += r.seconds
                    a.first_error = a.first_error or r.first_error
                    acc[1] += cpu
            for kind in proxies:
                r, cpu = out[(kind, mode, c)]
                print(f"  {kind:9} {mode:18} c={c:<3} {r.rate:8.1f} req/s  p50 {r.pct(.5):7.2f} ms  "
                      f"p99 {r.pct(.99):7.2f} ms  proxy CPU {1000 * cpu / max(r.ok, 1):.2f} ms/req  errors {r.errors}"
                      f"{'  ' + r.first_error if r.first_error else ''}", flush=True)
    return out


def metric(port: int, name: str, **labels) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def reload_check(work: Path, ports, hosts) -> list[dict]:
    """classgate under HTTP load while the UT1 policy reloads; loop stalls and failures per reload.

    The load is 2 keep-alive clients: steady traffic that leaves the proxy headroom. (A saturating
    load keeps ready callbacks queued all the time, and the probe then measures that queue, not stalls.)
    """
    policy = work / "reload-policy.yaml"
    policy.write_text(ut1_policy(work), encoding="utf-8")
    lag_file = work / "looplag.jsonl"
    lag_file.unlink(missing_ok=True)
    env = dict(os.environ, CLASSGATE_BENCH_LAG_FILE=str(lag_file))
    proc, port, mport = start_proxy("classgate", work, ports, policy,
                                    ["--set", f"scripts={REPO / 'bench' / 'proxy_looplag_probe.py'}"], env)
    results: list[dict] = []
    load_result: dict[str, Result] = {}
    try:
        def traffic() -> None:
            load_result["r"] = asyncio.run(load("http-keepalive", port, (ports[0], ports[1]), hosts, TEACHER, 2, 30))

        t = threading.Thread(target=traffic)
        t.start()
        time.sleep(4)  # steady state first: the baseline stall figure
        steps = [("same lists (index from cache)", None), ("changed list (full recompile)", "bench-new-1.test"),
                 ("same lists (index from cache)", None), ("changed list (full recompile)", "bench-new-2.test")]
        last_text = policy.read_text()
        for label, extra in steps:
            before = metric(mport, "classgate_policy_reloads_total", result="succeeded")
            started = time.time()
            text = ut1_policy(work, extra) if extra else last_text + f"# touched {started}\n"
            tmp = policy.with_suffix(".tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, policy)
            last_text = text
            while metric(mport, "classgate_policy_reloads_total", result="succeeded") <= before:
                if time.time() - started > 60:
                    raise SystemExit("reload did not happen")
                time.sleep(0.05)
            results.append({"label": label, "start": started, "end": time.time()})
            time.sleep(2.5)
        t.join()
    finally:
        stop(proc)
    events = [json.loads(x) for x in lag_file.read_text().splitlines() if x.strip()]
    lags = [e for e in events if "over_ms" in e]
    steady = [e["over_ms"] for e in lags if e["t"] < results[0]["start"] - 0.5]
    steady_s = max(results[0]["start"] - 0.5 - min((e["t"] for e in events), default=0), 1e-9)
    print(f"\nreload under load: {load_result['r'].ok} requests, {load_result['r'].errors} failed "
          f"({load_result['r'].rate:.0f} req/s); before any reload: longest loop stall {max(steady, default=0):.1f} ms, "
          f"stalls>20ms {sum(1 for x in steady if x > 20) / steady_s:.1f}/s")
    for r in results:
        # The watcher polls every 2 s: the reload starts up to 2 s after the edit; count until done.
        inside = [e["over_ms"] for e in lags if r["start"] <= e["t"] <= r["end"] + 0.3]
        r["max_stall_ms"] = max(inside, default=0.0)
        r["stalls_over_20ms"] = sum(1 for x in inside if x > 20)
        print(f"  {r['label']:32} edit->swapped {r['end'] - r['start']:.2f} s  longest loop stall "
              f"{r['max_stall_ms']:.1f} ms  stalls>20ms: {r['stalls_over_20ms']} "
              f"({r['stalls_over_20ms'] / max(r['end'] + 0.3 - r['start'], 1e-9):.1f}/s)")
    results.append({"requests": load_result["r"].ok, "failed": load_result["r"].errors,
                    "steady_max_ms": max(steady, default=0.0)})
    return results


async def _stall_during(coro_factory) -> tuple[float, int, float]:
    """(max stall ms, stalls > 20 ms, seconds) of a 5 ms-sleep probe while the coroutine runs."""
    stalls: list[float] = []

    async def probe() -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.005)
            stalls.append(time.perf_counter() - t0 - 0.005)

    task = asyncio.create_task(probe())
    await asyncio.sleep(0.2)
    stalls.clear()
    started = time.perf_counter()
    await coro_factory()
    took = time.perf_counter() - started
    task.cancel()
    return max(stalls, default=0.0) * 1000, sum(1 for x in stalls if x > 0.02), took


def inprocess_stalls(work: Path) -> None:
    """The reload alone (no traffic), in this process: a full UT1 compile in a worker thread versus
    the holder's way (child process compiles, the loop waits only for the cached load)."""
    from classgate.proxy.policy_holder import PolicyHolder

    policy = work / "stall-policy.yaml"
    print("\nreload in-process, event-loop stall of a 5 ms probe (no traffic):")
    for n, (label, isolate) in enumerate([("full compile in a worker thread", False),
                                          ("child-process compile + cached load", True),
                                          ("idle loop, for comparison", None)]):
        cache = work / f"stall-cache-{os.getpid()}-{n}"
        policy.write_text(ut1_policy(work, f"stall-{n}-{time.time_ns()}.test"), encoding="utf-8")
        holder = PolicyHolder(policy, cache_dir=cache, isolate_compile=bool(isolate))

        async def go(holder=holder, isolate=isolate) -> None:
            if isolate is None:
                await asyncio.sleep(2.0)
            else:
                assert await holder.reload()

        worst, over20, took = asyncio.run(_stall_during(go))
        print(f"  {label:38} {took:5.2f} s  longest stall {worst:6.1f} ms  stalls>20ms: {over20}")


def print_table(res: dict, kinds: list[str], modes: tuple[str, ...], concurrency: list[int]) -> None:
    """One row per (mode, concurrency, proxy): rate and CPU per request against bare mitmdump in the same run."""
    print("\n| mode | conc. | proxy | req/s | / bare (rate) | proxy CPU ms/req | bare / this (CPU per req) "
          "| p50 / p99 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for mode in modes:
        for c in concurrency:
            b, bcpu = res[("bare", mode, c)]
            b_ms = 1000 * bcpu / max(b.ok, 1)
            for kind in kinds:
                g, gcpu = res[(kind, mode, c)]
                g_ms = 1000 * gcpu / max(g.ok, 1)
                print(f"| {mode} | {c} | {kind} | {g.rate:.0f} | {g.rate / b.rate if b.rate else 0:.2f} | "
                      f"{g_ms:.2f} | {b_ms / g_ms if g_ms else 0:.2f} | {g.pct(.5):.1f} / {g.pct(.99):.1f} |")
    if "classgate" in kinds and "classgate-w2" in kinds:
        for mode in modes:
            for c in concurrency:
                one, two = res[("classgate", mode, c)][0], res[("classgate-w2", mode, c)][0]
                print(f"2 workers / 1 worker, {mode} c={c}: {two.rate / max(one.rate, 1e-9):.2f}x by rate")
    for c in concurrency if {"https-passthrough", "https-newconn"} <= set(modes) else ():
        for kind in (k for k in kinds if k != "bare"):
            g_pass, g_new = res[(kind, "https-passthrough", c)], res[(kind, "https-newconn", c)]
            print(f"{kind} passthrough / intercepted new connections, c={c}: "
                  f"{g_pass[0].rate / max(g_new[0].rate, 1e-9):.2f}x by rate, "
                  f"{(g_new[1] / max(g_new[0].ok, 1)) / max(g_pass[1] / max(g_pass[0].ok, 1), 1e-9):.1f}x "
                  f"by proxy CPU per connection")


def machine() -> str:
    model = ""
    try:
        model = next(ln.split(":", 1)[1].strip() for ln in subprocess.run(["lscpu"], capture_output=True,
                     text=True, check=False).stdout.splitlines() if ln.startswith("Model name"))
    except StopIteration:
        pass
    mem = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) / 2**20
    return f"nproc={os.cpu_count()}, {model}, {mem:.0f} GiB RAM, Python {platform.python_version()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--concurrency", default="10,50")
    ap.add_argument("--work", type=Path, default=Path("/tmp/classgate-bench-proxy"))
    ap.add_argument("--rounds", type=int, default=4, help="alternating slices per (mode, concurrency)")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of " + ", ".join(MODES))
    ap.add_argument("--proxies", default=",".join(PROXIES), help="comma-separated subset of " + ", ".join(PROXIES)
                    + " (bare is always run: the baseline)")
    ap.add_argument("--no-reload", action="store_true")
    ap.add_argument("--reload-only", action="store_true")
    ap.add_argument("--origin", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.origin:
        asyncio.run(run_origin(Path(args.origin[0]), Path(args.origin[1]), Path(args.origin[2])))
        return
    if not UT1.is_dir():
        raise SystemExit(f"UT1 data not found at {UT1}")
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    cert, key = make_cert(work / "origin")
    ports_file = work / "origin-ports"
    ports_file.unlink(missing_ok=True)
    origin = subprocess.Popen([sys.executable, "-m", "bench.bench_proxy", "--origin", str(ports_file), str(cert), str(key)])
    try:
        while not ports_file.exists() or len(ports_file.read_text().split()) != 3:
            time.sleep(0.05)
        ports = tuple(int(x) for x in ports_file.read_text().split())
        hosts = traffic_hosts()
        concurrency = [int(c) for c in args.concurrency.split(",")]
        print(f"machine: {machine()}")
        if not args.reload_only:
            policy = work / "policy.yaml"
            policy.write_text(ut1_policy(work), encoding="utf-8")
            proxies = {}
            kinds = ["bare", *(k for k in args.proxies.split(",") if k in PROXIES and k != "bare")]
            try:
                for kind in kinds:
                    proc, port, _ = start_proxy(kind, work, ports, policy)
                    proxies[kind] = (proc, port)
                modes = tuple(m for m in args.modes.split(",") if m in MODES)
                res = run_modes(proxies, ports, hosts, args.seconds, concurrency, args.rounds, modes)
            finally:
                for proc, _ in proxies.values():
                    stop(proc)
            print_table(res, kinds, modes, concurrency)
        if not args.no_reload:
            inprocess_stalls(work)
            reload_check(work, ports, hosts)
    finally:
        origin.terminate()
        origin.wait()


if __name__ == "__main__":
    main()
