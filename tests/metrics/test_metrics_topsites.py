"""Top sites: registrable domains, the Space-Saving bounds, the distinct-client threshold."""

from __future__ import annotations

import collections
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classgate.metrics.topsites import IP_ADDRESS, NO_DOMAIN, SpaceSaving, TopSites, registrable_domain


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("www.example.com", "example.com"),
        ("a.b.c.example.com", "example.com"),
        ("www.bbc.co.uk", "bbc.co.uk"),
        ("vnexpress.net", "vnexpress.net"),
        ("thpt-abc.hcm.edu.vn", "hcm.edu.vn"),  # edu.vn is a public suffix, hcm.edu.vn is not (PSL)
        ("user1.github.io", "user1.github.io"),  # private-section suffix: each user is its own site
        ("WWW.Example.COM.", "example.com"),
        ("github.io", NO_DOMAIN),  # a bare public suffix names no site
        ("com", NO_DOMAIN),
        ("localhost", NO_DOMAIN),
        ("1.2.3.4", IP_ADDRESS),  # PSL alone would say "3.4"
        ("10.0.0.7", IP_ADDRESS),
        ("[2001:db8::1]", IP_ADDRESS),
        ("::1", IP_ADDRESS),
    ],
)
def test_registrable_domain(host: str, expected: str) -> None:
    assert registrable_domain(host) == expected


def feed(sketch: SpaceSaving, stream: list[str], clients: int = 3) -> None:
    for i, key in enumerate(stream):
        sketch.add(key, lambda i=i: 1 + i % clients)


@pytest.mark.parametrize(
    ("capacity", "stream", "expected_top"),
    [
        # Fewer keys than counters: counts are exact.
        (4, ["a", "b", "a", "c", "a", "b"], [("a", 3, 3), ("b", 2, 2), ("c", 1, 1)]),
        # One counter: the newcomer inherits the count as its error; the lower bound stays honest.
        (1, ["a", "a", "b"], [("b", 3, 1)]),
        # A heavy hitter survives a tail of one-off keys (its count > N / capacity).
        (2, ["h", "x1", "h", "x2", "h", "x3", "h", "x4", "h"], [("h", 5, 5), ("x4", 4, 1)]),
    ],
)
def test_space_saving_table(
    capacity: int, stream: list[str], expected_top: list[tuple[str, int, int]]
) -> None:
    sketch = SpaceSaving(capacity, min_clients=1)
    feed(sketch, stream, clients=1)
    top, hidden = sketch.top(10)
    assert [(t["domain"], t["requests"], t["requests_at_least"]) for t in top] == expected_top
    assert hidden == 0
    assert len(sketch) <= capacity


@settings(max_examples=60, deadline=None)
@given(
    capacity=st.integers(1, 12),
    stream=st.lists(st.integers(0, 40).map(lambda i: f"d{i}"), max_size=400),
)
def test_space_saving_error_bound(capacity: int, stream: list[str]) -> None:
    """For every tracked key: true <= count <= true + error, error <= N/capacity; every key above N/capacity is kept."""
    sketch = SpaceSaving(capacity, min_clients=1)
    feed(sketch, stream, clients=1)
    true = collections.Counter(stream)
    n = len(stream)
    top, _ = sketch.top(capacity)
    reported = {t["domain"]: t for t in top}
    for key, t in reported.items():
        assert t["requests_at_least"] <= true[key] <= t["requests"]
        assert t["requests"] - t["requests_at_least"] <= n // capacity
    for key, count in true.items():
        if count > n / capacity:
            assert key in reported
    assert len(sketch) <= capacity


def test_memory_stays_bounded_on_a_long_tail() -> None:
    sketch = SpaceSaving(64, min_clients=1)
    rng = random.Random(7)
    heavy = [f"popular{i}.vn" for i in range(5)]
    for i in range(50_000):
        key = rng.choice(heavy) if i % 2 else f"tail{i}.example"
        sketch.add(key, lambda: 1)
    assert len(sketch) == 64
    assert len(sketch._heap) == 64  # one heap entry per counter
    top, _ = sketch.top(5)
    assert {t["domain"] for t in top} == set(heavy)


@pytest.mark.parametrize(
    ("clients", "min_clients", "shown"),
    [
        (["10.0.0.1"] * 50, 3, False),  # one device, however many requests, is never shown
        (["10.0.0.1", "10.0.0.2"] * 25, 3, False),
        (["10.0.0.1", "10.0.0.2", "10.0.0.3"], 3, True),
        ([None] * 50, 3, False),  # unknown clients count as one device
        ([None], 1, True),
        (["10.0.0.1"], 0, True),
    ],
)
def test_distinct_client_threshold(clients: list[str | None], min_clients: int, shown: bool) -> None:
    sites = TopSites(lambda c: str(c), capacity=8, min_clients=min_clients)
    for client in clients:
        sites.observe("games", "www.roblox.com", client)
    games = sites.snapshot()["categories"]["games"]  # type: ignore[index]
    assert bool(games["top"]) is shown
    assert games["hidden_domains"] == (0 if shown else 1)
    assert games["requests"] == len(clients)


def test_snapshot_keeps_no_client_address_or_host() -> None:
    sites = TopSites(lambda c: str(c), capacity=8, min_clients=2)
    for client in ("192.0.2.10", "192.0.2.11"):
        sites.observe("social", "secret-page.facebook.com", client)
    text = repr(sites.snapshot()) + repr(vars(sites)) + repr(sites._by_category["social"]._counters)
    assert "192.0.2.1" not in text
    assert "secret-page" not in text
    assert "facebook.com" in text


def test_categories_fold_and_disappear_with_the_policy() -> None:
    allowed = {"games"}
    sites = TopSites(lambda c: c if c in allowed else "other", capacity=4, min_clients=1)
    sites.observe("games", "a.com", "1")
    sites.observe("made-up", "b.com", "1")
    assert set(sites.snapshot()["categories"]) == {"games", "other"}  # type: ignore[arg-type]
    sites.keep_categories(frozenset({"social", "uncategorized"}))
    assert set(sites.snapshot()["categories"]) == {"other"}  # type: ignore[arg-type]


@pytest.mark.parametrize("host", ["", None, 5])
def test_observe_never_raises(host: object) -> None:
    sites = TopSites(lambda c: str(c))
    sites.observe("games", host)  # type: ignore[arg-type]
    assert sites.tracked() == 0
