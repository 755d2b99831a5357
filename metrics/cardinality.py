"""How many series one gateway can export, from the metric definitions (for sizing the fleet store).

`max_series(vocabulary, categories, groups)` is an upper bound: it assumes every category x group x action
combination happens, which a school only approaches over a long time. A test checks it against a
`Metrics` fed with every combination, so it cannot drift from the definitions. For a policy:

    classgate validate policies/samples/department.yaml [--overlay school.yaml] --series
"""

from __future__ import annotations

from classgate.metrics import labels as L
from classgate.metrics.sync import REASONS, REJECT_REASONS
from classgate.metrics.traffic import DECISION_BUCKETS

# prometheus_client's ProcessCollector on Linux; the school agent forwards only 3 of them.
PROCESS_SERIES = 6
PROCESS_SERIES_FORWARDED = 3
# Prometheus' own per-target series (up, scrape_duration_seconds, scrape_samples_scraped,
# scrape_samples_post_metric_relabeling, scrape_series_added); only `up` is forwarded.
SCRAPE_SERIES = 5


def max_series(vocabulary: L.LabelVocabulary, categories: int, groups: int, *, sync: bool = True) -> dict[str, int]:
    """Upper bound of series per metric family for a policy with this many categories and groups."""
    cat = categories + 2  # + "uncategorized" + "other"
    grp = groups + 2  # + "default" + "other"
    act = len(vocabulary.actions) + 1  # + "other", which only a caller bug produces
    per_request = cat * grp * act
    out = {
        "classgate_requests_total": per_request,
        "classgate_request_bytes_total": per_request,
        "classgate_response_bytes_total": per_request,
        "classgate_blocked_requests_total": cat * (len(vocabulary.tiers) + 1),
        "classgate_tls_connections_total": len(vocabulary.tls_modes) + 1,
        "classgate_safesearch_rewrites_total": len(vocabulary.safesearch_engines) + 1,
        "classgate_filter_errors_total": len(vocabulary.filter_stages) + 1,
        "classgate_malformed_requests_total": len(vocabulary.malformed_parts) + 1,
        "classgate_decision_duration_seconds": len(DECISION_BUCKETS) + 1 + 2,  # buckets, +Inf, _sum, _count
        "classgate_policy_reloads_total": len(L.RELOAD_RESULTS),
        "classgate_tls_ech_connections_total": len(vocabulary.tls_modes) + 1,
        "classgate_connections_refused_total": len(L.CONNECTION_REFUSALS),  # no caller-given value
        # The gateway's resolver: queries like requests; the rest closed sets, present from the start.
        "classgate_dns_queries_total": per_request,
        "classgate_dns_special_answers_total": len(vocabulary.dns_special_answers) + 1,
        "classgate_dns_ech_stripped_records_total": len(vocabulary.dns_stripped_types) + 1,
        "classgate_dns_failed_queries_total": len(vocabulary.dns_failures) + 1,
        "classgate_dns_cache_lookups_total": len(vocabulary.dns_cache_results) + 1,
        # Warn-and-continue and quotas (metrics/student.py): category x group, only what happened.
        "classgate_warnings_shown_total": cat * grp,
        "classgate_warnings_continued_total": cat * grp,
        "classgate_quotas_used_up_total": cat * grp,
        # Teachers' class actions in force: every group x kind at 0 from the start, "other" only if it happens.
        "classgate_teacher_actions_active": grp * (len(vocabulary.class_action_kinds) + 1),
        # build_info, policy_info, policy_loaded_timestamp, policy_categories, policy_groups,
        # policy_fallback, topsites_tracked_domains, topsites_capacity_per_category
        "state": 8,
        "process": PROCESS_SERIES,
    }
    if sync:
        # attempts, failures{reason}, bundles_rejected{reason}, 3 timestamps, bundle info, version,
        # installed timestamp
        out["classgate_sync"] = 1 + (len(REASONS) + 1) + (len(REJECT_REASONS) + 1) + 3 + 3
    return out


def typical_series(vocabulary: L.LabelVocabulary, categories: int, groups: int, *, sync: bool = True) -> int:
    """What a school actually sends after weeks of use: every category seen by every group, with
    the action each rule gives it (one action per category x group most of the time, two where a
    schedule flips it), no "other" values, and only the forwarded process and scrape series."""
    cat, grp = categories + 1, groups + 1  # + "uncategorized", + "default"
    per_request = round(cat * grp * 1.3)
    fixed = max_series(vocabulary, categories, groups, sync=sync)
    return (
        3 * per_request
        + cat * 3  # blocked: a category is blocked by about 3 tiers (locked/department/school) at most
        + fixed["classgate_tls_connections_total"]
        - 1
        + fixed["classgate_safesearch_rewrites_total"]
        - 1
        + fixed["classgate_filter_errors_total"]
        + fixed["classgate_malformed_requests_total"]
        - 1
        + fixed["classgate_decision_duration_seconds"]
        + fixed["classgate_policy_reloads_total"]
        + len(vocabulary.tls_modes)  # ECH connections
        + len(L.CONNECTION_REFUSALS)  # connections refused, at 0 from the start
        + per_request  # DNS queries (a gateway with --dns; 0 without it)
        + len(vocabulary.dns_special_answers)
        + len(vocabulary.dns_stripped_types)
        + len(vocabulary.dns_failures)
        + len(vocabulary.dns_cache_results)
        + grp * len(vocabulary.class_action_kinds)  # teachers' actions in force, 0 included
        + 3 * 2 * grp  # warnings shown, continued, quotas used up: a warn or quota category or two per group
        + fixed["state"]
        + fixed.get("classgate_sync", 0)
        + PROCESS_SERIES_FORWARDED
        + 1  # up
    )
