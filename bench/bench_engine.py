"""Policy-engine benchmark: decisions/s, memory, compile and load time, against baselines run the same time.

    .venv/bin/python -m bench.bench_engine [--urls 1000000] [--adult 5000000] [--work /tmp/classgate-bench-engine]
                                           [--no-squidguard]

Lists: all of ../shared/data/ut1 plus a generated `adult/domains` stand-in (UT1's real one is absent there).
Each measurement runs in its own child process (clean memory figures), one core each, one after another:
  compile   cold compile of the policy (lists read and indexed, index written to the cache dir)
  load      load of the already-compiled policy (digest of the lists + mmap of the index)
  ours      full decisions (canonical URL, group, schedules, rules) on the stream, caches on, then off
  naive     a Python dict of every domain -> categories and a suffix walk on urlsplit().hostname
  squidguard  /usr/bin/squidGuard fed the same stream on stdin (squid redirector format), per-category dbs
            and one merged list; db build time with -C
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench.engine_data import categories_of, make_document, make_stream, make_tree


def rss_kib() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS", "RssAnon", "RssFile")):
            key, value = line.split(":")
            out[key] = int(value.split()[0])
    return out


def load_stream(work: Path, tree: Path, n: int) -> tuple[list[str], list[str]]:
    path = work / f"stream-{n}.tsv"
    if not path.exists():
        urls, clients = make_stream(tree, n)
        path.write_text("".join(f"{u}\t{c}\n" for u, c in zip(urls, clients)))
    urls, clients = [], []
    for line in path.read_text().splitlines():
        u, c = line.split("\t")
        urls.append(u)
        clients.append(c)
    return urls, clients


# ---------------------------------------------------------------------- phases (each in a child process)

def phase_compile(args: argparse.Namespace) -> dict:
    from classgate.policies.engine import compile_policy

    tree = make_tree(args.work, args.adult)
    cache = args.work / "compiled"
    shutil.rmtree(cache, ignore_errors=True)
    doc = make_document(tree)
    before = rss_kib()
    t = time.perf_counter()
    policy = compile_policy(doc, cache)
    seconds = time.perf_counter() - t
    s = policy.stats
    return {"compile_s": seconds, "entries": s.list_entries, "keys": s.index_keys, "index_bytes": s.index_bytes,
            "bytes_per_entry": s.index_bytes / s.list_entries, "bytes_per_key": s.index_bytes / s.index_keys,
            "junk": s.junk_lines, "peak_rss_mib": _peak_mib(), "rss_before_mib": before["VmRSS"] / 1024}


def _peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return 0.0


def _run(policy, urls: list[str], clients: list[str]) -> tuple[float, float, dict[str, int]]:
    """Wall seconds, CPU seconds of this process (the fairer figure on a shared machine), actions taken."""
    decide = policy.decide
    actions: dict[str, int] = {}
    t, cpu = time.perf_counter(), time.process_time()
    for u, c in zip(urls, clients):
        d = decide(u, c)
        actions[d.action] = actions.get(d.action, 0) + 1
    return time.perf_counter() - t, time.process_time() - cpu, actions


def phase_ours(args: argparse.Namespace) -> dict:
    from classgate.policies.engine import compile_policy

    tree = make_tree(args.work, args.adult)
    urls, clients = load_stream(args.work, tree, args.urls)
    doc = make_document(tree)
    # The stream (two lists of a million strings) is the harness's data, not the engine's: keep the cyclic GC
    # from re-walking it on every full collection. The engine's own objects are collected as usual.
    gc.freeze()
    base = rss_kib()
    t = time.perf_counter()
    policy = compile_policy(doc, args.work / "compiled")
    load_s = time.perf_counter() - t
    assert policy.stats.index_cached, "run the compile phase first"
    # What a proxy worker can do once its policy is loaded: move the compiled policy's objects (a few
    # thousand: rules, list names, list-set table) out of the GC's reach too. The caches fill during the run
    # and are collected as usual.
    gc.freeze()
    after_load = rss_kib()
    seconds, cpu, actions = _run(policy, urls, clients)
    after_run = rss_kib()
    # The fast path's authority cache (raw authority -> host facts) is looked up once per request that has a
    # plain http(s) form; the lru caches behind it serve the rest (the full parser's path).
    hit_rates = {"authority": round(1 - policy._authorities.computed / len(urls), 3)}
    hit_rates.update({name: round(fn.cache_info().hits / max(1, fn.cache_info().hits + fn.cache_info().misses), 3)
                      for name, fn in (("url", policy._parse), ("host", policy._host_facts),
                                       ("outcome", policy._outcome))})
    hit_rates["url_lookups"] = policy._parse.cache_info().hits + policy._parse.cache_info().misses
    uncached = compile_policy(doc, args.work / "compiled", cache_size=0)
    n_off = min(len(urls), args.uncached_urls)
    off_seconds, off_cpu, off_actions = _run(uncached, urls[:n_off], clients[:n_off])
    # Cross-check against squidGuard (which blocks the rules' block categories for every client): how many
    # requests fall in any of those categories by our index.
    blocked = {c for r in doc.rules if r.action == "block" for c in r.categories}
    in_blocked = sum(1 for u, c in zip(urls, clients) if not blocked.isdisjoint(policy.decide(u, c).categories))
    # Same answers with and without caches on the measured prefix: every field (the schedules too, so a
    # window edge passing between the two calls would show up as a difference).
    check = [tuple(policy.decide(u, c)) == tuple(uncached.decide(u, c))
             for u, c in zip(urls[:20000], clients[:20000])]
    return {
        "load_s": load_s, "decisions": len(urls), "per_s": len(urls) / seconds, "per_cpu_s": len(urls) / cpu,
        "actions": actions, "cache_hit_rates": hit_rates,
        "uncached_decisions": n_off, "uncached_per_s": n_off / off_seconds, "uncached_per_cpu_s": n_off / off_cpu,
        "uncached_actions": off_actions,
        "same_answers_cached_vs_uncached": all(check), "in_block_categories": in_blocked,
        "rss_load_mib": (after_load["VmRSS"] - base["VmRSS"]) / 1024,
        "rss_after_stream_mib": (after_run["VmRSS"] - base["VmRSS"]) / 1024,
        "rss_file_after_stream_mib": (after_run["RssFile"] - base["RssFile"]) / 1024,
        "rss_anon_after_stream_mib": (after_run["RssAnon"] - base["RssAnon"]) / 1024,
    }


def phase_naive(args: argparse.Namespace) -> dict:
    tree = make_tree(args.work, args.adult)
    urls, _ = load_stream(args.work, tree, args.urls)
    gc.freeze()  # as in phase_ours
    base = rss_kib()
    t = time.perf_counter()
    table: dict[str, str] = {}
    for name in categories_of(tree):
        f = tree / name / "domains"
        if f.exists():
            for line in f.read_text(encoding="utf-8", errors="replace").split():
                if not line.startswith("#"):
                    table[line] = name  # one category per domain: the cheapest possible table
    load_s = time.perf_counter() - t
    mem = rss_kib()
    hits = 0
    t, cpu = time.perf_counter(), time.process_time()
    for u in urls:
        host = urlsplit(u).hostname or ""
        labels = host.split(".")
        for i in range(len(labels)):
            if ".".join(labels[i:]) in table:
                hits += 1
                break
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    # The same walk on hosts cut out of the URLs beforehand: the dict lookups alone, no URL parsing at all.
    hosts = [u.split("/", 3)[2] for u in urls]
    t_hosts = time.process_time()
    for host in hosts:
        labels = host.split(".")
        for i in range(len(labels)):
            if ".".join(labels[i:]) in table:
                break
    hosts_cpu = time.process_time() - t_hosts
    return {"load_s": load_s, "entries": len(table), "per_s": len(urls) / seconds, "per_cpu_s": len(urls) / cpu,
            "hosts_only_per_cpu_s": len(hosts) / hosts_cpu, "hits": hits,
            "rss_mib": (mem["VmRSS"] - base["VmRSS"]) / 1024,
            "bytes_per_entry": (mem["VmRSS"] - base["VmRSS"]) * 1024 / len(table)}


def phase_squidguard(args: argparse.Namespace) -> dict:
    binary = shutil.which("squidGuard") or "/usr/bin/squidGuard"
    if not Path(binary).exists():
        return {"skipped": "squidGuard not installed"}
    from classgate.policies.engine import compile_policy  # noqa: F401 - only for the rule's category list

    tree = make_tree(args.work, args.adult)
    urls, clients = load_stream(args.work, tree, args.urls)
    doc = make_document(tree)
    blocked = sorted({c for r in doc.rules if r.action == "block" for c in r.categories})
    stream = args.work / f"squid-{len(urls)}.txt"
    if not stream.exists():
        stream.write_text("".join(f"{u} {c}/- - GET\n" for u, c in zip(urls, clients)))
    out = {}
    for mode in ("per_category", "merged"):
        home = args.work / f"sg-{mode}"
        shutil.rmtree(home, ignore_errors=True)
        (home / "db").mkdir(parents=True)
        (home / "log").mkdir()
        dests = []
        if mode == "per_category":
            for cat in blocked:
                d = home / "db" / cat
                d.mkdir()
                parts = []
                for f in ("domains", "urls"):
                    if (tree / cat / f).exists():
                        shutil.copyfile(tree / cat / f, d / f)
                        parts.append(f"  {'domainlist' if f == 'domains' else 'urllist'} {cat}/{f}")
                dests.append((cat, parts))
        else:
            d = home / "db" / "merged"  # not "all": that word is squidGuard's own "everything"
            d.mkdir()
            for f in ("domains", "urls"):
                seen: dict[str, None] = {}
                for cat in blocked:
                    if (tree / cat / f).exists():
                        seen.update(dict.fromkeys((tree / cat / f).read_text(errors="replace").split()))
                (d / f).write_text("\n".join(seen) + "\n")
            dests.append(("merged", ["  domainlist merged/domains", "  urllist merged/urls"]))
        conf = home / "squidGuard.conf"
        conf.write_text(
            f"dbhome {home / 'db'}\nlogdir {home / 'log'}\n"
            + "".join(f"dest {name} {{\n" + "\n".join(parts) + "\n}\n" for name, parts in dests)
            + "acl {\n  default {\n    pass " + " ".join(f"!{n}" for n, _ in dests) + " all\n"
            + "    redirect http://blocked.example/\n  }\n}\n"
        )
        t = time.perf_counter()
        subprocess.run([binary, "-c", str(conf), "-C", "all"], check=True, capture_output=True, timeout=900)
        build_s = time.perf_counter() - t
        t, cpu = time.perf_counter(), _children_cpu()
        with open(stream, "rb") as stdin:
            result = subprocess.run([binary, "-c", str(conf)], stdin=stdin, capture_output=True, timeout=1800,
                                    check=False)
        seconds, cpu = time.perf_counter() - t, _children_cpu() - cpu
        answers = result.stdout.decode(errors="replace").splitlines()
        out[mode] = {"build_s": build_s, "per_s": len(urls) / seconds, "per_cpu_s": len(urls) / cpu,
                     "answers": len(answers),
                     "redirected": sum(1 for a in answers if "blocked.example" in a), "rc": result.returncode}
    out["categories"] = blocked
    return out


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


PHASES = {"compile": phase_compile, "ours": phase_ours, "naive": phase_naive, "squidguard": phase_squidguard}


def machine() -> str:
    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), platform.processor())
    mem = int(next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")).split()[1])
    return f"{os.cpu_count()} CPUs ({model}), {mem / 1024 / 1024:.1f} GiB RAM, Python {platform.python_version()}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--urls", type=int, default=1_000_000)
    p.add_argument("--uncached-urls", type=int, default=200_000, help="stream prefix measured with caches off")
    p.add_argument("--adult", type=int, default=5_000_000, help="generated adult/domains entries")
    p.add_argument("--work", type=Path, default=Path("/tmp/classgate-bench-engine"))
    p.add_argument("--no-squidguard", action="store_true")
    p.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.phase:
        print(json.dumps(PHASES[args.phase](args)))
        return

    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f} at start")
    t = time.perf_counter()
    tree = make_tree(args.work, args.adult)
    load_stream(args.work, tree, args.urls)
    print(f"data ready in {time.perf_counter() - t:.1f}s ({tree})")
    results = {}
    phases = ["compile", "ours", "naive"] + ([] if args.no_squidguard else ["squidguard"])
    for phase in phases:
        cmd = [sys.executable, "-m", "bench.bench_engine", "--phase", phase, "--urls", str(args.urls), "--adult", str(args.adult),
               "--work", str(args.work), "--uncached-urls", str(args.uncached_urls)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            sys.exit(f"phase {phase} failed:\n{proc.stderr}")
        results[phase] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{phase}: {json.dumps(results[phase])}", flush=True)
    report(results)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


def report(r: dict) -> None:
    c, o, n = r["compile"], r["ours"], r["naive"]
    print("\n== Policy engine ==")
    print(f"list entries {c['entries']:,} (distinct keys {c['keys']:,}), index {c['index_bytes'] / 2**20:.1f} MiB:"
          f" {c['bytes_per_entry']:.1f} bytes/entry (naive dict: {n['bytes_per_entry']:.0f} bytes/entry,"
          f" x{n['bytes_per_entry'] / c['bytes_per_entry']:.1f})")
    print(f"cold compile {c['compile_s']:.2f}s (peak RSS {c['peak_rss_mib']:.0f} MiB); load of compiled policy"
          f" {o['load_s']:.3f}s (naive dict load {n['load_s']:.2f}s)")
    print(f"full decisions/s, caches on : {o['per_s']:,.0f} wall, {o['per_cpu_s']:,.0f} per CPU-second"
          f" (x{o['per_cpu_s'] / n['per_cpu_s']:.2f} the naive lookup; cache hit rates {o['cache_hit_rates']})")
    print(f"full decisions/s, caches off: {o['uncached_per_s']:,.0f} wall, {o['uncached_per_cpu_s']:,.0f} per CPU-second"
          f" (x{o['uncached_per_cpu_s'] / n['per_cpu_s']:.2f})")
    print(f"naive dict suffix walk/s    : {n['per_s']:,.0f} wall, {n['per_cpu_s']:,.0f} per CPU-second"
          f" (urlsplit + host walk); {n['hosts_only_per_cpu_s']:,.0f} per CPU-second on pre-cut hosts;"
          f" RSS {n['rss_mib']:.0f} MiB")
    print(f"RSS of the loaded policy after the stream: {o['rss_after_stream_mib']:.0f} MiB"
          f" (file-backed, shareable {o['rss_file_after_stream_mib']:.0f} MiB, private {o['rss_anon_after_stream_mib']:.0f} MiB)")
    sg = r.get("squidguard")
    if sg and "skipped" not in sg:
        for mode in ("per_category", "merged"):
            m = sg[mode]
            print(f"squidGuard {mode}: {m['per_s']:,.0f}/s wall, {m['per_cpu_s']:,.0f} per CPU-second (ours"
                  f" x{o['per_cpu_s'] / m['per_cpu_s']:.1f} cached, x{o['uncached_per_cpu_s'] / m['per_cpu_s']:.1f}"
                  f" uncached, per CPU-second), db build {m['build_s']:.1f}s,"
                  f" {m['redirected']:,} of {m['answers']:,} redirected")
    elif sg:
        print(f"squidGuard: {sg['skipped']}")


if __name__ == "__main__":
    main()
