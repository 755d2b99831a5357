"""Label folding: every value outside the bounded sets becomes "other" (a table of cases)."""

from __future__ import annotations

import pytest

from classgate.metrics import labels as L
from classgate.proxy.metric_labels import METRIC_LABELS as V

POLICY = L.PolicyLabels(V, categories=["games", "social", "adult"], groups=["students", "teachers"])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("games", "games"),
        ("social", "social"),
        ("uncategorized", "uncategorized"),  # always allowed: the filter's "no category"
        ("Games", "other"),  # label values are exact policy names
        ("www.roblox.com", "other"),  # a host must never become a label
        ("10.0.0.5", "other"),
        ("", "other"),
        (None, "other"),
        (42, "other"),
    ],
)
def test_category_folding(value: object, expected: str) -> None:
    assert POLICY.category(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("students", "students"),
        ("teachers", "teachers"),
        ("default", "default"),  # the policy's fallback group always exists
        ("guests", "other"),
        ("192.168.1.7", "other"),
        (None, "other"),
    ],
)
def test_group_folding(value: object, expected: str) -> None:
    assert POLICY.group(value) == expected


@pytest.mark.parametrize(
    ("value", "allowed", "expected"),
    [
        ("allow", V.actions, "allow"),
        ("block", V.actions, "block"),
        ("redirect", V.actions, "other"),
        ("locked", V.tiers, "locked"),
        ("error", V.tiers, "error"),
        ("admin", V.tiers, "other"),
        ("passthrough", V.tls_modes, "passthrough"),
        ("PASSTHROUGH", V.tls_modes, "other"),
        ("youtube", V.safesearch_engines, "youtube"),
        ("yandex", V.safesearch_engines, "other"),
        ("sync", V.policy_sources, "sync"),
        ("/etc/policy.yaml", V.policy_sources, "other"),
    ],
)
def test_fixed_enum_folding(value: str, allowed: tuple[str, ...], expected: str) -> None:
    assert L.fold(value, allowed) == expected


def test_empty_or_invalid_policy_names_are_not_labels() -> None:
    labels = L.PolicyLabels(V, categories=["", None, "games"], groups=[None])  # type: ignore[list-item]
    assert labels.categories == {"games", "uncategorized"}
    assert labels.groups == {"default"}


@pytest.mark.parametrize(
    ("field", "values"),
    [("actions", ()), ("tiers", ("a", "a")), ("tls_modes", ("other",))],
)
def test_a_vocabulary_must_be_distinct_values_without_other(field: str, values: tuple[str, ...]) -> None:
    import dataclasses

    with pytest.raises(ValueError, match=field):
        dataclasses.replace(V, **{field: values})
