"""The label vocabulary the gateway's metrics are built with: every closed set from where it is defined.

`classgate.metrics` imports no sibling package; the proxy, which knows both sides, hands it the values
the engine and the gates actually produce, so a dashboard's label and the engine's value cannot drift.
"""

from __future__ import annotations

from typing import Any

from classgate.metrics import Metrics
from classgate.metrics.labels import LabelVocabulary
from classgate.policies.vocabulary import (
    ACTIONS,
    CLASS_ACTION_KINDS,
    DEFAULT_GROUP,
    SAFE_SEARCH_ENGINES,
    TIERS,
    UNCATEGORIZED,
)
from classgate.proxy.dns.vocabulary import CACHE_RESULTS, DNS_FAILURES, SPECIAL_ANSWERS, STRIPPED_TYPES
from classgate.proxy.failsafe import FAIL_STAGES
from classgate.proxy.policy_holder import POLICY_SOURCES
from classgate.proxy.request_syntax import MALFORMED_PARTS
from classgate.proxy.verdict import TLS_MODES

METRIC_LABELS = LabelVocabulary(
    actions=ACTIONS,
    tiers=TIERS,
    tls_modes=TLS_MODES,
    safesearch_engines=SAFE_SEARCH_ENGINES,
    filter_stages=FAIL_STAGES,
    malformed_parts=MALFORMED_PARTS,
    policy_sources=POLICY_SOURCES,
    uncategorized=UNCATEGORIZED,
    default_group=DEFAULT_GROUP,
    dns_special_answers=SPECIAL_ANSWERS,
    dns_stripped_types=STRIPPED_TYPES,
    dns_failures=DNS_FAILURES,
    dns_cache_results=CACHE_RESULTS,
    class_action_kinds=CLASS_ACTION_KINDS,
)


def gateway_metrics(**options: Any) -> Metrics:
    """A `Metrics` for the gateway (options as for `Metrics`: process_metrics, clock, topsites sizes)."""
    return Metrics(METRIC_LABELS, **options)
