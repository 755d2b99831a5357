"""Cost of the policy language: reading + validating YAML, and the per-decision helpers the engine calls.

    .venv/bin/python -m bench.policy_language

Baselines, measured in the same run: `yaml.load` with the same libyaml loader on the same files (what a reader without positions,
validation or overlay logic would cost) and a dict lookup (the floor for a per-decision helper).
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import yaml

from classgate.policies.document import read_document
from classgate.policies.groups import GroupResolver
from classgate.policies.schedules import active_schedules

SAMPLES = Path(__file__).resolve().parents[1] / "policies" / "samples"


def per_second(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def main() -> None:
    dept, school = SAMPLES / "department.yaml", SAMPLES / "school.yaml"
    texts = [dept.read_text(), school.read_text()]
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the same libyaml parser read_document uses
    base = per_second(lambda: [yaml.load(t, Loader=loader) for t in texts], 200)
    ours = per_second(lambda: read_document(dept, school), 200)
    print(f"read_document(sample + overlay): {1000 / ours:.2f} ms; yaml.load (CSafeLoader) of both: "
          f"{1000 / base:.2f} ms; ratio {base / ours:.2f}x the time of the bare parse")

    doc = read_document(dept, school)
    resolver = GroupResolver(doc.groups)
    table = {"10.10.1.2": "students"}
    floor = per_second(lambda: table.get("10.10.1.2"), 1_000_000)
    cached = per_second(lambda: resolver.group_of("10.10.1.2"), 1_000_000)
    ips = [f"10.{i % 256}.{(i // 256) % 256}.{i % 200}" for i in range(100_000)]
    start = time.perf_counter()
    for ip in ips:
        resolver._lookup(ip)
    uncached = len(ips) / (time.perf_counter() - start)
    print(f"group_of, cached address: {cached:,.0f}/s ({cached / floor:.2f}x a dict lookup); "
          f"first sight of an address: {uncached:,.0f}/s")

    at = dt.datetime(2026, 11, 23, 9, 0)
    sched = per_second(lambda: active_schedules(doc.schedules, at), 200_000)
    print(f"active_schedules ({len(doc.schedules)} schedules, "
          f"{sum(len(s.windows) for s in doc.schedules.values())} windows): {sched:,.0f}/s "
          f"({sched / floor:.3f}x a dict lookup; the engine caches it per minute)")


if __name__ == "__main__":
    main()
