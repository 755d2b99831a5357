"""How many series one gateway can export, from the metric definitions (for sizing the fleet store).

`max_series(categories, groups)` is an upper bound: it assumes every category x group x action
combination happens, which a school only approaches over a long time. A test checks it against a
`Metrics` fed with every combination, so it cannot drift from the definitions. Run it for a policy:

    .venv/bin/python -m metrics.cardinality policies/samples/department.yaml [--overlay school.yaml]
"""

from __future__ import annotations

import sys

from metrics import labels as L
from metrics.sync import REASONS, REJECT_REASONS
from metrics.traffic import DECISION_BUCKETS

# prometheus_client's ProcessCollector on Linux; the school agent forwards only 3 of them.
PROCESS_SERIES = 6
PROCESS_SERIES_FORWARDED = 3
# Prometheus' own per-target series (up, scrape_duration_seconds, scrape_samples_scraped,
# scrape_samples_post_metric_relabeling, scrape_series_added); only `up` is forwarded.
SCRAPE_SERIES = 5


def max_series(categories: int, groups: int, *, sync: bool = True) -> dict[str, int]:
    """Upper bound of series per metric family for a policy with this many categories and groups."""
    cat = categories + 2  # + "uncategorized" + "other"
    grp = groups + 2  # + "default" + "other"
    act = len(L.ACTIONS) + 1  # + "other", which only a caller bug produces
    per_request = cat * grp * act
    out = {
        "classgate_requests_total": per_request,
        "classgate_request_bytes_total": per_request,
        "classgate_response_bytes_total": per_request,
        "classgate_blocked_requests_total": cat * (len(L.TIERS) + 1),
        "classgate_tls_connections_total": len(L.TLS_MODES) + 1,
        "classgate_safesearch_rewrites_total": len(L.SAFESEARCH_ENGINES) + 1,
        "classgate_filter_errors_total": len(L.FILTER_STAGES) + 1,
        "classgate_decision_duration_seconds": len(DECISION_BUCKETS) + 1 + 2,  # buckets, +Inf, _sum, _count
        "classgate_policy_reloads_total": len(L.RELOAD_RESULTS),
        # build_info, policy_info, policy_loaded_timestamp, policy_categories, policy_groups,
        # topsites_tracked_domains, topsites_capacity_per_category
        "state": 7,
        "process": PROCESS_SERIES,
    }
    if sync:
        # attempts, failures{reason}, bundles_rejected{reason}, 3 timestamps, bundle info, version,
        # installed timestamp
        out["classgate_sync"] = 1 + (len(REASONS) + 1) + (len(REJECT_REASONS) + 1) + 3 + 3
    return out


def typical_series(categories: int, groups: int, *, sync: bool = True) -> int:
    """What a school actually sends after weeks of use: every category seen by every group, with
    the action each rule gives it (one action per category x group most of the time, two where a
    schedule flips it), no "other" values, and only the forwarded process and scrape series."""
    cat, grp = categories + 1, groups + 1  # + "uncategorized", + "default"
    per_request = round(cat * grp * 1.3)
    fixed = max_series(categories, groups, sync=sync)
    return (
        3 * per_request
        + cat * 3  # blocked: a category is blocked by about 3 tiers (locked/department/school) at most
        + fixed["classgate_tls_connections_total"]
        - 1
        + fixed["classgate_safesearch_rewrites_total"]
        - 1
        + fixed["classgate_filter_errors_total"]
        + fixed["classgate_decision_duration_seconds"]
        + fixed["classgate_policy_reloads_total"]
        + fixed["state"]
        + fixed.get("classgate_sync", 0)
        + PROCESS_SERIES_FORWARDED
        + 1  # up
    )


def count_names(policy: str, overlay: str | None = None) -> tuple[str, int, int]:
    """(name, categories, groups) of a policy file and its overlay, read as plain YAML.

    metrics/ does not import policies/ (docs/architecture.md); counting names needs no validation,
    and `classgate validate` is the place to check a policy.
    """
    import yaml

    categories: set[str] = set()
    groups: set[str] = set()
    name = ""
    for path in filter(None, (policy, overlay)):
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        if not isinstance(doc, dict):
            raise ValueError(f"{path}: not a classgate policy")  # noqa: TRY004 (bad input, not a bad type)
        name = name or str(doc.get("name", path))
        categories |= set(doc.get("categories") or {})
        groups |= set(doc.get("groups") or {}) - {L.DEFAULT_GROUP}
    return name, len(categories), len(groups)


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m metrics.cardinality", description=__doc__)
    parser.add_argument("policy")
    parser.add_argument("--overlay")
    parser.add_argument("--schools", type=int, default=3000)
    args = parser.parse_args(argv)
    try:
        name, n_cat, n_grp = count_names(args.policy, args.overlay)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    bound = max_series(n_cat, n_grp)
    typical = typical_series(n_cat, n_grp)
    print(f"{name}: {n_cat} categories, {n_grp} groups (besides uncategorized and default)")
    for name, count in bound.items():
        print(f"  {name:<42} <= {count}")
    total = sum(bound.values())
    print(f"  {'upper bound per gateway':<42}    {total}")
    print(f"  {'typical, forwarded to the Department':<42}  ~ {typical}")
    print(
        f"  {args.schools} schools: typical ~ {typical * args.schools:,}, upper bound {total * args.schools:,}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
