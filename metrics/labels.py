"""Bounded label values: every label classgate exports comes from a set given here or by the policy.

The proxy hands us plain strings; a value outside the allowed set is folded into ``"other"`` instead
of creating a new series. That keeps the number of series a function of the policy (categories x
groups), never of what students visit, so a school cannot be flooded with series and nothing that
identifies a destination or a person can reach Prometheus.

The closed vocabularies (actions, tiers, TLS modes...) are defined by the packages that produce them
(classgate.policies.vocabulary, classgate.proxy) and handed to `Metrics` as one `LabelVocabulary` at
start-up: metrics imports no sibling package, and a value cannot mean one thing to the engine and
another to a dashboard. The vocabularies that are this package's own are below.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

OTHER: Final = "other"
RELOAD_RESULTS: Final = ("succeeded", "rejected")
# Why the gateway closed a connection before reading from it (proxy/addons/device_limit.py).
CONNECTION_REFUSALS: Final = ("device_limit",)


@dataclass(frozen=True)
class LabelVocabulary:
    """The closed label value sets of the per-request metrics, from the packages that produce them."""

    actions: tuple[str, ...]  # allow, block
    tiers: tuple[str, ...]  # which part of the policy decided
    tls_modes: tuple[str, ...]  # intercepted, passthrough, refused
    safesearch_engines: tuple[str, ...]
    filter_stages: tuple[str, ...]  # where a fail-closed event happened
    malformed_parts: tuple[str, ...]  # which part of a request refused as malformed was wrong
    policy_sources: tuple[str, ...]  # where the policy in force came from (a file, the Department sync)
    uncategorized: str  # the category of a destination in no policy category
    default_group: str  # the group of a client in no group's networks
    # The gateway's resolver: answers by its own rule, record types `ech` is stripped from, why a query got no
    # ordinary answer, cache lookups.
    dns_special_answers: tuple[str, ...]
    dns_stripped_types: tuple[str, ...]
    dns_failures: tuple[str, ...]
    dns_cache_results: tuple[str, ...]
    class_action_kinds: tuple[str, ...]  # what a teacher's class action does: allow, block, lock, pause

    def __post_init__(self) -> None:
        for name in ("actions", "tiers", "tls_modes", "safesearch_engines", "filter_stages", "malformed_parts",
                     "policy_sources", "dns_special_answers", "dns_stripped_types", "dns_failures",
                     "dns_cache_results", "class_action_kinds"):
            values = getattr(self, name)
            if not values or OTHER in values or len(set(values)) != len(values):
                raise ValueError(f"label vocabulary {name}: {values!r} must be distinct values without {OTHER!r}")


def fold(value: object, allowed: frozenset[str] | tuple[str, ...]) -> str:
    """`value` if it is one of `allowed`, else ``"other"`` (never raises: metrics must not break a request)."""
    return value if isinstance(value, str) and value in allowed else OTHER


class PolicyLabels:
    """The category and group label values the current policy allows (swapped whole on each policy)."""

    def __init__(self, vocabulary: LabelVocabulary, categories: Iterable[str] = (), groups: Iterable[str] = ()):
        self.categories = frozenset(_clean(categories)) | {vocabulary.uncategorized}
        self.groups = frozenset(_clean(groups)) | {vocabulary.default_group}

    def category(self, value: object) -> str:
        return fold(value, self.categories)

    def group(self, value: object) -> str:
        return fold(value, self.groups)


def _clean(values: Iterable[str]) -> list[str]:
    # Policy names are validated by the policy language; this only guards against a caller passing
    # something that is not a name at all (a None, an empty string) becoming a label value.
    return [v for v in values if isinstance(v, str) and v]
