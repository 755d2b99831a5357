"""What the admin page shows of the gateway: its /metrics and /stats.json, read and summed for people.

Counts are the gateway's since it started (the time is shown); sites are the k-anonymous top-N of
/stats.json (a site appears once enough different devices asked for it), so nothing here is about one
student. A gateway that cannot be reached gives a `Usage` with `error` set, and the page says so.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Final

from prometheus_client.parser import text_string_to_metric_families

from classgate.proxy.address import Address

# (category, group, action) of classgate_requests_total: the one breakdown the page's figures are made of.
RequestKey = tuple[str, str, str]

TIMEOUT: Final = 3.0
MAX_BODY: Final = 8 * 1024 * 1024
TOP_SITES: Final = 10


@dataclass(frozen=True)
class Usage:
    since: float | None = None
    requests_by_category: dict[str, int] = field(default_factory=dict)
    blocks_by_category: dict[str, int] = field(default_factory=dict)
    requests_by_group: dict[str, int] = field(default_factory=dict)
    blocks_by_group: dict[str, int] = field(default_factory=dict)
    top_sites: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # category -> (site, requests)
    min_clients: int | None = None
    policy_version: str | None = None
    policy_fallback: bool = False
    filter_errors: dict[str, int] = field(default_factory=dict)
    sync_last_success: float | None = None
    sync_failures: int | None = None  # None: the gateway does not sync
    error: str | None = None
    request_counts: dict[RequestKey, int] = field(default_factory=dict)
    figures_from: float | None = None  # the request figures run from then (today's: agent/console/today.py)


def with_counts(usage: Usage, counts: dict[RequestKey, int]) -> Usage:
    """`usage` with its request figures made from `counts` (today's, say) instead of the gateway's totals."""
    requests_cat, blocks_cat, requests_group, blocks_group = _breakdown(counts)
    return replace(usage, request_counts=dict(counts), requests_by_category=requests_cat,
                   blocks_by_category=blocks_cat, requests_by_group=requests_group, blocks_by_group=blocks_group)


def _breakdown(counts: dict[RequestKey, int]) -> tuple[dict[str, int], dict[str, int], dict[str, int],
                                                        dict[str, int]]:
    requests_cat: Counter[str] = Counter()
    blocks_cat: Counter[str] = Counter()
    requests_group: Counter[str] = Counter()
    blocks_group: Counter[str] = Counter()
    for (category, group, action), n in counts.items():
        requests_cat[category] += n
        requests_group[group] += n
        if action == "block":
            blocks_cat[category] += n
            blocks_group[group] += n
    return (dict(requests_cat.most_common()), dict(blocks_cat.most_common()), dict(requests_group.most_common()),
            dict(blocks_group.most_common()))


def read_usage(metrics: Address) -> Usage:
    host = f"[{metrics.host}]" if ":" in metrics.host else metrics.host
    base = f"http://{host}:{metrics.port}"
    try:
        exposition = _get(f"{base}/metrics").decode("utf-8", "replace")
        stats = json.loads(_get(f"{base}/stats.json?n={TOP_SITES}"))
    except (OSError, ValueError) as exc:
        return Usage(error=f"{base}: {getattr(exc, 'reason', exc)}")
    return summarise(exposition, stats)


def summarise(exposition: str, stats: dict[str, Any]) -> Usage:
    """The figures of one scrape and one /stats.json (pure: the unit tests feed it text)."""
    counts: Counter[RequestKey] = Counter()
    errors: Counter[str] = Counter()
    version: str | None = None
    fallback = False
    last_success: float | None = None
    sync_failures: int | None = None
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            labels, value = sample.labels, sample.value
            if sample.name == "classgate_requests_total":
                counts[(labels.get("category", "?"), labels.get("group", "?"), labels.get("action", "?"))] += \
                    int(value)
            elif sample.name == "classgate_filter_errors_total":
                errors[labels.get("stage", "?")] += int(value)
            elif sample.name == "classgate_policy_info":
                version = labels.get("version")
            elif sample.name == "classgate_policy_fallback":
                fallback = value > 0
            elif sample.name == "classgate_sync_last_success_timestamp_seconds":
                last_success = value or None
            elif sample.name == "classgate_sync_failures_total":
                sync_failures = (sync_failures or 0) + int(value)
    top = {name: [(str(s["domain"]), int(s["requests"])) for s in cat.get("top") or []]
           for name, cat in (stats.get("categories") or {}).items()}
    requests_cat, blocks_cat, requests_group, blocks_group = _breakdown(counts)
    return Usage(since=float(stats["since"]) if stats.get("since") else None,
                 requests_by_category=requests_cat, blocks_by_category=blocks_cat,
                 requests_by_group=requests_group, blocks_by_group=blocks_group, request_counts=dict(counts),
                 top_sites={k: v for k, v in top.items() if v}, min_clients=stats.get("min_clients"),
                 policy_version=version, policy_fallback=fallback, filter_errors=dict(errors),
                 sync_last_success=last_success, sync_failures=sync_failures)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        body: bytes = response.read(MAX_BODY)
        return body
