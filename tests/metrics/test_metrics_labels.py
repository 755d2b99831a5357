"""Label folding: every value outside the bounded sets becomes "other" (a table of cases)."""

from __future__ import annotations

import pytest

from metrics import labels as L

POLICY = L.PolicyLabels(categories=["games", "social", "adult"], groups=["students", "teachers"])


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
        ("allow", L.ACTIONS, "allow"),
        ("block", L.ACTIONS, "block"),
        ("redirect", L.ACTIONS, "other"),
        ("locked", L.TIERS, "locked"),
        ("error", L.TIERS, "error"),
        ("admin", L.TIERS, "other"),
        ("passthrough", L.TLS_MODES, "passthrough"),
        ("PASSTHROUGH", L.TLS_MODES, "other"),
        ("youtube", L.SAFESEARCH_ENGINES, "youtube"),
        ("yandex", L.SAFESEARCH_ENGINES, "other"),
        ("sync", L.POLICY_SOURCES, "sync"),
        ("/etc/policy.yaml", L.POLICY_SOURCES, "other"),
    ],
)
def test_fixed_enum_folding(value: str, allowed: tuple[str, ...], expected: str) -> None:
    assert L.fold(value, allowed) == expected


def test_empty_or_invalid_policy_names_are_not_labels() -> None:
    labels = L.PolicyLabels(categories=["", None, "games"], groups=[None])  # type: ignore[list-item]
    assert labels.categories == {"games", "uncategorized"}
    assert labels.groups == {"default"}
