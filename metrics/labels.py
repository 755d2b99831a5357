"""Bounded label values: every label classgate exports comes from a set fixed here or by the policy.

The proxy hands us plain strings; a value outside the allowed set is folded into ``"other"`` instead
of creating a new series. That keeps the number of series a function of the policy (categories x
groups), never of what students visit, so a school cannot be flooded with series and nothing that
identifies a destination or a person can reach Prometheus.
"""

from __future__ import annotations

from collections.abc import Iterable

OTHER = "other"
# The filter's label for a destination in no policy category (flow.metadata "category").
UNCATEGORIZED = "uncategorized"
# The policy's fallback group for clients in no group network (policies.model.DEFAULT_GROUP).
DEFAULT_GROUP = "default"

ACTIONS = ("allow", "block")
TIERS = ("locked", "school", "department", "default", "error")
TLS_MODES = ("intercepted", "passthrough", "refused")
SAFESEARCH_ENGINES = ("google", "bing", "duckduckgo", "youtube")
FILTER_STAGES = ("request", "connect", "tls", "safesearch", "response")
RELOAD_RESULTS = ("succeeded", "rejected")
POLICY_SOURCES = ("file", "sync")


def fold(value: object, allowed: frozenset[str] | tuple[str, ...]) -> str:
    """`value` if it is one of `allowed`, else ``"other"`` (never raises: metrics must not break a request)."""
    return value if isinstance(value, str) and value in allowed else OTHER


class PolicyLabels:
    """The category and group label values the current policy allows (swapped whole on each policy)."""

    def __init__(self, categories: Iterable[str] = (), groups: Iterable[str] = ()):
        self.categories = frozenset(_clean(categories)) | {UNCATEGORIZED}
        self.groups = frozenset(_clean(groups)) | {DEFAULT_GROUP}

    def category(self, value: object) -> str:
        return fold(value, self.categories)

    def group(self, value: object) -> str:
        return fold(value, self.groups)


def _clean(values: Iterable[str]) -> list[str]:
    # Policy names are validated by the policy language; this only guards against a caller passing
    # something that is not a name at all (a None, an empty string) becoming a label value.
    return [v for v in values if isinstance(v, str) and v]
