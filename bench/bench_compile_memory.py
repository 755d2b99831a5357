"""Compile memory: peak RSS and time of the compile child on the 6.1M-entry benchmark lists.

    .venv/bin/python -m bench.bench_compile_memory [--adult 5000000] [--rounds 3] [--before 5b124a6]
                                                    [--work /tmp/classgate-bench-engine]

Lists: bench_engine's (all of ../shared/data/ut1 plus a generated 5M-line adult/domains; made once in --work
and shared with bench_engine), each list a category of one policy file. Each round runs the child the
gateway runs on a reload, `python -m classgate.proxy.precompile POLICY --cache-dir DIR`, on an empty cache
dir, and reads its peak RSS (ru_maxrss from wait4: that child alone) and wall time.

--before REV also compiles, alternating round by round, with the code of that git revision (taken with
`git archive`, run from a tree of links that maps it into the classgate namespace, as .ci/typecheck does),
and checks that both wrote the same index bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from bench.bench_engine import machine
from bench.engine_data import categories_of, make_tree

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("policies", "proxy", "metrics", "agent")
CHILD_TIMEOUT_S = 300


def write_policy(work: Path, tree: Path) -> Path:
    cats = categories_of(tree)
    lines = ["classgate: 1", "name: bench-compile", "sources:", f"  ut1: {{format: ut1, path: {tree}}}",
             "categories:", *(f"  {c}: {{include: [ut1/{c}]}}" for c in cats),
             "rules:", "  - {name: harmful, action: block, categories: [adult, gambling], locked: true}",
             "default: allow"]
    policy = work / "compile-memory-policy.yaml"
    policy.write_text("\n".join(lines) + "\n")
    return policy


def checkout(rev: str, work: Path) -> Path:
    """The packages of `rev`, linked into a classgate namespace folder to put first on PYTHONPATH."""
    root = work / f"code-{rev}"
    if not (root / "classgate").is_dir():
        shutil.rmtree(root, ignore_errors=True)
        (root / "src").mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", rev, *PACKAGES],
                                 capture_output=True, check=True, timeout=60).stdout
        tar = root / "src.tar"
        tar.write_bytes(archive)
        with tarfile.open(tar) as t:
            t.extractall(root / "src", filter="data")
        (root / "classgate").mkdir()
        for package in PACKAGES:
            (root / "classgate" / package).symlink_to(root / "src" / package)
    return root


def compile_once(policy: Path, cache: Path, pythonpath: Path | None) -> dict:
    shutil.rmtree(cache, ignore_errors=True)
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    cmd = [sys.executable, "-m", "classgate.proxy.precompile", str(policy), "--cache-dir", str(cache)]
    started = time.perf_counter()
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = started + CHILD_TIMEOUT_S
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            child.kill()
            child.wait(10)
            sys.exit(f"the compile child took over {CHILD_TIMEOUT_S}s")
        time.sleep(0.02)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4: tell Popen, so it does not wait
    err = child.stderr.read().decode(errors="replace") if child.stderr else ""
    if child.returncode != 0:
        sys.exit(f"the compile child failed (exit {child.returncode}):\n{err[-2000:]}")
    [index] = cache.glob("index-*.cgidx")
    return {"peak_rss_mib": usage.ru_maxrss / 1024, "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "index": index}


def summary(rounds: list[dict]) -> dict:
    out = {}
    for key in ("peak_rss_mib", "wall_s", "cpu_s"):
        values = [r[key] for r in rounds]
        out[key] = {"min": round(min(values), 2), "median": round(statistics.median(values), 2),
                    "max": round(max(values), 2)}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--adult", type=int, default=5_000_000, help="generated adult/domains entries")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--before", metavar="REV", help="also compile with this git revision's code, alternating")
    p.add_argument("--work", type=Path, default=Path("/tmp/classgate-bench-engine"))
    p.add_argument("--make-tree", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.make_tree:
        print(make_tree(args.work, args.adult))
        return
    # In a child of its own: Linux counts the parent's peak in a spawned child's ru_maxrss (vfork + exec),
    # so this process must stay small while it starts the compile children.
    made = subprocess.run([sys.executable, "-m", "bench.bench_compile_memory", "--make-tree", "--work",
                           str(args.work), "--adult", str(args.adult)], capture_output=True, text=True,
                          check=True, timeout=CHILD_TIMEOUT_S)
    tree = Path(made.stdout.strip().splitlines()[-1])
    policy = write_policy(args.work, tree)
    own_peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    codes: dict[str, Path | None] = {"this tree": None}
    if args.before:
        codes[args.before] = checkout(args.before, args.work)
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f} at start")
    rounds: dict[str, list[dict]] = {name: [] for name in codes}
    for i in range(args.rounds):
        for name, pythonpath in codes.items():
            r = compile_once(policy, args.work / f"compile-memory-cache-{len(rounds[name])}-{name[:8]}", pythonpath)
            rounds[name].append(r)
            print(f"round {i + 1} {name}: peak RSS {r['peak_rss_mib']:.0f} MiB, {r['wall_s']:.2f} s wall, "
                  f"{r['cpu_s']:.2f} s CPU (load {os.getloadavg()[0]:.2f})")
    indexes = {name: {r["index"].read_bytes() for r in rs} for name, rs in rounds.items()}
    same = len(set.union(*indexes.values())) == 1
    print(json.dumps({
        "machine": machine(), "adult_entries": args.adult, "bench_process_peak_rss_mib": round(own_peak_mib, 1),
        "index_bytes": rounds["this tree"][0]["index"].stat().st_size,
        "same_index_bytes": same,
        **{name: summary(rs) for name, rs in rounds.items()},
    }, indent=1))
    for rs in rounds.values():
        for r in rs:
            shutil.rmtree(r["index"].parent, ignore_errors=True)
    if not same:
        sys.exit("the index bytes differ between rounds or revisions")


if __name__ == "__main__":
    main()
