"""What the Department serves per poll cycle for a fleet of gateways, and how fast a new bundle spreads.

    .venv/bin/python -m bench.bench_sync [--gateways 3000] [--scaled-gateways 200] [--workers 2]

1. Publishes a real bundle (UT1 categories from ../shared/data/ut1 when present, else synthetic lists)
   with the real Department code, and serves it with the real `department serve` handler in its own process,
   which counts requests and bytes per file kind.
2. One gateway syncs from scratch (the baseline: a whole bundle); its state is cloned to N gateways.
3. Idle cycle: each of the N gateways runs the real gateway fetch (python-tuf ngclient Updater.refresh +
   manifest check) against the server once. Counted at the server.
4. One-list change: one list gets 100 new domains, the Department publishes, each gateway fetches once.
5. Time until 99% run the new version: the real PollSchedule (jittered 300-900 s) simulated for N gateways
   in virtual time, plus the measured fetch and validation time; cross-checked by a real run of M gateways
   (threads, real fetches, real server) with the intervals scaled down 100x.
Bounded: N fetches per cycle, M agents for at most 3 scaled intervals.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import multiprocessing as mp
import os
import random
import shutil
import tempfile
import threading
import time
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

from classgate.agent.department.publish import publish
from classgate.agent.department.repository import Repository, init_repository
from classgate.agent.department.server import Fleet, RepositoryHandler
from classgate.agent.sync.loop import PollSchedule, PollSettings
from classgate.agent.sync.transport import CappedFetcher
from classgate.agent.sync.verify import Verifier

UT1 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ut1"
CATEGORIES = ("gambling", "games", "social_networks", "malware", "dating", "vpn", "redirector", "shopping")
CHANGED = "gambling"


# --- the Department server, in its own process, counting -----------------------------------------------

class CountingHandler(RepositoryHandler):
    stats: dict[str, list[int]]

    def __init__(self, *args, stats, lock, **kwargs):
        self.stats, self.stats_lock = stats, lock
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        if self.path == "/__stats":
            with self.stats_lock:
                body = json.dumps(self.stats).encode()
                if "reset" not in self.headers.get("X-Bench", ""):
                    pass
                else:
                    self.stats.clear()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        written = [0]
        raw = self.wfile

        class Counter:
            def write(self, data):
                written[0] += len(data)
                return raw.write(data)

            def __getattr__(self, name):
                return getattr(raw, name)

        self.wfile = Counter()
        try:
            super().do_GET()
        finally:
            self.wfile = raw
            kind = _kind(self.path)
            with self.stats_lock:
                entry = self.stats.setdefault(kind, [0, 0])
                entry[0] += 1
                entry[1] += written[0]


def _kind(path: str) -> str:
    if path.startswith("/metadata/"):
        name = path.rsplit("/", 1)[1]
        return "metadata/" + (name.split(".", 1)[1] if name[0].isdigit() else name)
    if path.endswith("bundle.json"):
        return "targets/bundle.json"
    return "targets/" + "/".join(path.split("/")[-2:-1]) + "/" + path.rsplit(".", 1)[-1]


def serve_process(root: str, port_queue: mp.Queue) -> None:
    handler = partial(CountingHandler, directory=str(Path(root) / "repository"), fleet=Fleet(Path(root) / "f.json"),
                      counters={}, stats={}, lock=threading.Lock())
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.request_queue_size = 512
    port_queue.put(server.server_address[1])
    server.serve_forever()


def server_stats(url: str, reset: bool = True) -> dict[str, list[int]]:
    import urllib.request

    req = urllib.request.Request(url + "__stats", headers={"X-Bench": "reset" if reset else ""})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


# --- the bundle ---------------------------------------------------------------------------------------

def make_policy(folder: Path) -> tuple[Path, str]:
    source = "UT1 (real lists)"
    for name in CATEGORIES:
        dest = folder / "lists" / "ut1" / name
        dest.mkdir(parents=True)
        if (UT1 / name / "domains").is_file():
            for f in ("domains", "urls"):
                if (UT1 / name / f).is_file():
                    shutil.copyfile(UT1 / name / f, dest / f)
        else:
            source = "synthetic lists (../shared/data/ut1 absent)"
            (dest / "domains").write_text("".join(f"{name}-{i}.example\n" for i in range(20000)))
    cats = "\n".join(f"  {n}: {{include: [ut1/{n}]}}" for n in CATEGORIES)
    policy = folder / "department.yaml"
    policy.write_text(f"classgate: 1\nname: bench\nsources:\n  ut1: {{format: ut1, path: lists/ut1}}\n"
                      f"categories:\n{cats}\nrules:\n  - {{name: b, action: block, categories: [{', '.join(CATEGORIES)}]}}\n"
                      "default: allow\n")
    return policy, source


# --- gateways -----------------------------------------------------------------------------------------

def clone_gateway(seed: Path, dest: Path) -> None:
    """Metadata and manifest copied (python-tuf rewrites them); cached lists hard-linked (only read).

    The list that is about to change is left out: the gateway downloads it either way (its cached copy
    would fail the new hash), and leaving it out keeps a download from writing through a shared link
    and saves 3000 copies of it on disk. The idle cycle never looks at it (the manifest is unchanged).
    """
    shutil.copytree(seed / "metadata", dest / "metadata", symlinks=True)
    (dest / "cache").mkdir(parents=True)
    for f in (seed / "cache").iterdir():
        if f.name == "bundle.json":
            shutil.copyfile(f, dest / "cache" / f.name)
        elif not f.name.endswith(f"{CHANGED}%2Fdomains"):
            os.link(f, dest / "cache" / f.name)


def fetch_many(args: tuple[str, bytes, list[str], int | None]) -> tuple[list[float], list[int | None], int, int]:
    """Worker: one real gateway fetch per state dir; returns per-gateway seconds and versions seen."""
    url, trust, dirs, active = args
    times, versions = [], []
    fetcher = CappedFetcher()
    for d in dirs:
        started = time.perf_counter()
        bundle, _ = Verifier(url, trust, Path(d), fetcher).fetch_latest(active)
        times.append(time.perf_counter() - started)
        versions.append(bundle.version if bundle else active)
    return times, versions, fetcher.requests, fetcher.bytes


def run_cycle(pool: cf.ProcessPoolExecutor, url: str, trust: bytes, dirs: list[Path], active: int | None,
              workers: int) -> tuple[float, list[float], list[int | None]]:
    chunks = [[str(d) for d in dirs[i::workers * 4]] for i in range(workers * 4)]
    started = time.perf_counter()
    results = list(pool.map(fetch_many, [(url, trust, c, active) for c in chunks]))
    wall = time.perf_counter() - started
    return wall, [t for r in results for t in r[0]], [v for r in results for v in r[1]]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def simulate_spread(n: int, settings: PollSettings, processing: float, seed: int = 7) -> list[float]:
    """Virtual time: each gateway polls on its own jittered schedule (the real PollSchedule); the bundle is
    published at a random moment long after boot; a gateway runs it at its first poll after that."""
    rng = random.Random(seed)
    delays = []
    for i in range(n):
        schedule = PollSchedule(settings, random.Random(rng.random()))
        t = schedule.first_delay()
        publish_at = 6 * 3600 + rng.uniform(0, 3600)
        while t < publish_at:
            t += schedule.after_success()
        delays.append(t - publish_at + processing)
    return delays


def scaled_run(url: str, trust: bytes, dirs: list[Path], repo: Repository, policy: Path, scale: float,
               settings: PollSettings, processing: float) -> list[float]:
    """M real agents (threads) with intervals scaled by `scale`; publish, then time each one's switch."""
    scaled = PollSettings(settings.min_interval * scale, settings.max_interval * scale,
                          settings.backoff_base * scale, settings.backoff_max * scale)
    versions: dict[int, int] = {}
    switched: dict[int, float] = {}
    stop = threading.Event()
    published_at = [0.0]

    def agent(i: int, d: Path) -> None:
        schedule = PollSchedule(scaled, random.Random(i))
        fetcher = CappedFetcher()
        active = versions[i]
        next_poll = time.monotonic() + schedule.first_delay()
        while not stop.is_set():
            stop.wait(max(0.0, next_poll - time.monotonic()))
            if stop.is_set():
                return
            started = time.monotonic()
            bundle, _ = Verifier(url, trust, d, fetcher).fetch_latest(active)
            if bundle is not None:
                active = bundle.version
                if published_at[0] and i not in switched:
                    # When the poll that found it started: its processing time is not scaled.
                    switched[i] = started - published_at[0]
            next_poll = time.monotonic() + schedule.after_success()

    for i in range(len(dirs)):
        versions[i] = repo.load("targets").signed.version
    threads = [threading.Thread(target=agent, args=(i, d), daemon=True) for i, d in enumerate(dirs)]
    for t in threads:
        t.start()
    time.sleep(scaled.max_interval)  # let the fleet settle into its jittered rhythm
    text = (policy.parent / "lists/ut1" / CHANGED / "domains").read_text()
    (policy.parent / "lists/ut1" / CHANGED / "domains").write_text(text + "scaled-run.example\n")
    publish(repo, policy)
    published_at[0] = time.monotonic()
    deadline = time.monotonic() + 3 * scaled.max_interval
    while len(switched) < len(dirs) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(5)
    return [v / scale + processing for v in switched.values()] + [float("inf")] * (len(dirs) - len(switched))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gateways", type=int, default=3000)
    ap.add_argument("--scaled-gateways", type=int, default=200)
    ap.add_argument("--scale", type=float, default=0.01, help="time scale of the real spread run")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    try:
        bench(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench(args: argparse.Namespace, work: Path) -> None:
    from classgate.policies import load_policy

    print(f"machine: {os.cpu_count()} CPUs; gateways: {args.gateways}; workers: {args.workers}")
    policy, source = make_policy(work / "policy")
    init_repository(work / "dept")
    repo = Repository.open(work / "dept")
    published = publish(repo, policy)
    print(f"bundle: {published.files} files, {published.total_bytes / 1e6:.2f} MB ({source})")
    trust = (work / "dept" / "repository" / "metadata" / "1.root.json").read_bytes()

    ports: mp.Queue = mp.Queue()
    server = mp.Process(target=serve_process, args=(str(work / "dept"), ports), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{ports.get(timeout=30)}/"
    try:
        seed = work / "gw" / "seed"
        t0 = time.perf_counter()
        Verifier(url, trust, seed).fetch_latest(None)
        first_sync = time.perf_counter() - t0
        baseline = server_stats(url)
        full = sum(b for _, b in baseline.values())
        print(f"\nbaseline: a new gateway downloads the whole bundle: {sum(r for r, _ in baseline.values())} "
              f"requests, {full / 1e6:.2f} MB, {first_sync:.2f} s")

        t0 = time.perf_counter()
        dirs = [work / "gw" / f"g{i}" for i in range(args.gateways)]
        for d in dirs:
            clone_gateway(seed, d)
        print(f"cloned {len(dirs)} gateway states in {time.perf_counter() - t0:.1f} s")

        with cf.ProcessPoolExecutor(args.workers, mp_context=mp.get_context("fork")) as pool:
            wall, times, versions = run_cycle(pool, url, trust, dirs, published.version, args.workers)
            idle = server_stats(url)
            report("idle cycle (nothing changed)", idle, len(dirs), wall, times, full)
            assert set(versions) == {published.version}

            domains = policy.parent / "lists/ut1" / CHANGED / "domains"
            domains.write_text(domains.read_text() + "".join(f"new-{i}.example\n" for i in range(100)))
            t0 = time.perf_counter()
            second = publish(repo, policy)
            publish_seconds = time.perf_counter() - t0
            print(f"\npublish of the one-list change: {publish_seconds:.2f} s (validation included), "
                  f"{second.new_files} new file(s), {second.new_bytes / 1e6:.2f} MB")
            wall, times, versions = run_cycle(pool, url, trust, dirs, published.version, args.workers)
            change = server_stats(url)
            report(f"one-list change ({CHANGED}/domains)", change, len(dirs), wall, times, full)
            assert set(versions) == {second.version}

        t0 = time.perf_counter()
        load_policy(policy)
        validate = time.perf_counter() - t0
        settings = PollSettings()
        processing = percentile(times, 0.99) + validate
        delays = simulate_spread(args.gateways, settings, processing)
        print(f"\nspread, simulated ({args.gateways} gateways, polls every {settings.min_interval:.0f}-"
              f"{settings.max_interval:.0f} s, + {processing:.1f} s fetch p99 and validation):")
        for q in (0.5, 0.9, 0.99, 1.0):
            print(f"  {int(q * 100):>3}% run the new bundle after {percentile(delays, q) / 60:5.1f} min")

        m = min(args.scaled_gateways, len(dirs))
        scaled = scaled_run(url, trust, dirs[:m], repo, policy, args.scale, settings, processing)
        server_stats(url)
        print(f"spread, real run of {m} gateways at {1 / args.scale:.0f}x speed (poll times scaled back, "
              f"+ the same {processing:.1f} s):")
        for q in (0.5, 0.9, 0.99, 1.0):
            print(f"  {int(q * 100):>3}% run the new bundle after {percentile(scaled, q) / 60:5.1f} min")
    finally:
        server.terminate()
        server.join(5)


def report(title: str, stats: dict[str, list[int]], n: int, wall: float, times: list[float], full: int) -> None:
    requests = sum(r for r, _ in stats.values())
    nbytes = sum(b for _, b in stats.values())
    print(f"\n{title}: {n} gateways in {wall:.1f} s ({n / wall:.0f} gateway polls/s served); "
          f"per-gateway fetch p50 {percentile(times, 0.5) * 1000:.0f} ms, p99 {percentile(times, 0.99) * 1000:.0f} ms")
    for kind, (r, b) in sorted(stats.items()):
        print(f"  {kind:<34} {r:>7} requests {b:>12} bytes  ({r / n:.2f} req, {b / n:.0f} B per gateway)")
    print(f"  total: {requests / n:.2f} requests and {nbytes / n:.0f} bytes per gateway; "
          f"{nbytes / 1e6:.2f} MB for the fleet; {nbytes / n / full:.5f} x a whole bundle per gateway")


if __name__ == "__main__":
    main()
