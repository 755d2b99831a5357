"""The engine's cached paths (recent decisions, per-authority fast path, outcome caches) give exactly the
decision of the uncached full path: every field, for tricky URL spellings, URL-list hosts and regex rules."""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classgate.policies.decision import Decision, Match
from classgate.policies.engine import Policy, compile_policy
from classgate.policies.fastpath import (
    GROUP_MEMO_LIMIT,
    NO_SECOND,
    VERDICT_LIMIT,
    EngineCaches,
    GenerationalCache,
    tail_is_canonical,
)
from classgate.policies.model import Category, Document, Group, Rule, Schedule, Source, TimeWindow

TZ = dt.timezone(dt.timedelta(hours=7))
MONDAY_9 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=TZ)
MONDAY_20 = dt.datetime(2026, 11, 23, 20, 0, tzinfo=TZ)
CLIENTS = ("10.10.1.2", "10.20.0.5", "192.0.2.1", None)

HOSTS = ["casino.example", "www.casino.example", "CASINO.Example", "casino.example.", "ex%61mple.org",
         "games.example", "portal.example", "Portal.Example", "social.example", "x.chat.example",
         "wiki.social.example", "intranet.example", "tracker.example", "unlisted.example", "bücher.example",
         "xn--bcher-kva.example", "127.0.0.1", "2130706433", "0x7f.1", "0177.0.0.1", "[::1]", "[0:0::1]",
         "user:pw@casino.example", "edu.vn@casino.example", "casino.example:80", "casino.example:8080",
         "casino.example:443", "a..b", "", "bad host", "games.example\\", "portal.example?x", "h.example#f",
         "1.2.3.4.5", "xcasino.example", "sub.portal.example"]
TAILS = ["", "/", "/play", "/play/level1", "/PLAY", "/player", "/search?q=game&page=2", "/search?q=other",
         "/a/../play", "/%2e%2e/play", "/%70lay", "/x/%2E%2E/play", "/./play", "/play/.", "/admin", "/admin/users",
         "/administration", "/setup.exe", "/setup.EXE", "/a?", "/a?b?", "/a#frag", "/a b", "/é", "/a%2fb",
         "\\play", "/p//q", "/~u/x.html", "/a?q=1&r=%41", "/a\t/b", "?q=1", "/a;b=c", "/[x]",
         # paths as servers read them: merged slashes, encoded slashes, dot segments after decoding
         "//x", "/a//b/", "/a%2Fb", "/a/..%2Fb", "/q?u=http://x//y", "//", "/a%5cb"]
SCHEMES = ["http://", "https://", "HTTP://", "http:/", "ws://", "ftp://", "mailto:", "", "http:///", " http://"]


def _tree(root: Path) -> Path:
    ut1 = root / "ut1"
    for rel, text in {
        "gambling/domains": "casino.example\nbet.example\n127.0.0.1\n",
        "games/domains": "games.example\nbet.example\n",
        "games/urls": "portal.example/play\nportal.example/search?q=game\nsub.portal.example/x\n",
        "social/domains": "social.example\n",
    }.items():
        (ut1 / rel).parent.mkdir(parents=True, exist_ok=True)
        (ut1 / rel).write_text(text)
    return ut1


def _document(root: Path, *, regex: bool) -> Document:
    ut1 = _tree(root)
    lessons = Schedule("lessons", (TimeWindow(days=frozenset(range(5)), start=dt.time(7), end=dt.time(17)),))
    rules = [
        Rule("no-gambling", "block", categories=("gambling",), tier="locked", locked=True),
        Rule("school-allow-wiki", "allow", domains=("wiki.social.example",), tier="school"),
        Rule("teachers-anything", "allow", groups=("teachers",)),
        Rule("games-in-lessons", "block", groups=("students",), when=("lessons",), categories=("games",)),
        Rule("no-social", "block", categories=("social",)),
        Rule("block-admin-path", "block", urls=("intranet.example/admin",)),
    ]
    if regex:
        rules.insert(5, Rule("no-exe", "block", regex=(r"\.exe$",)))
    return Document(
        name="fastpath",
        sources={"ut1": Source("ut1", "ut1", ut1)},
        categories={
            "gambling": Category("gambling", include=("ut1/gambling",), locked=True),
            "games": Category("games", include=("ut1/games",)),
            "social": Category("social", include=("ut1/social",), domains=("chat.example",)),
        },
        groups={
            "students": Group("students", (ipaddress.ip_network("10.10.0.0/16"),)),
            "teachers": Group("teachers", (ipaddress.ip_network("10.20.0.0/16"),)),
        },
        schedules={"lessons": lessons},
        rules=tuple(rules),
        default="allow",
    )


def _urls(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    urls = [s + h + t for s in ("http://", "https://") for h in HOSTS for t in TAILS]
    urls += [rng.choice(SCHEMES) + rng.choice(HOSTS) + rng.choice(TAILS) for _ in range(n)]
    return urls


def _same(cached: Decision, reference: Decision) -> None:
    assert type(cached) is Decision
    assert tuple(cached) == tuple(reference)
    assert cached.matched == reference.matched
    assert all(type(m) is Match for m in cached.matched)


@pytest.mark.parametrize("regex", [False, True])
@pytest.mark.parametrize("cache_size", [4, 65536])
def test_cached_decisions_equal_uncached_ones_field_by_field(tmp_path: Path, regex: bool, cache_size: int) -> None:
    doc = _document(tmp_path, regex=regex)
    cached, reference = compile_policy(doc, cache_size=cache_size), compile_policy(doc, cache_size=0)
    urls = _urls(1500, seed=cache_size)
    # Twice over, in two orders and at two times: the second pass is served by the caches (when they hold it).
    for at in (MONDAY_9, MONDAY_20):
        for url in urls + urls[::-1]:
            for client in CLIENTS:
                _same(cached.decide(url, client, at), reference.decide(url, client, at))


def test_the_fast_path_serves_plain_urls_and_leaves_the_rest(tmp_path: Path) -> None:
    policy = compile_policy(_document(tmp_path, regex=False))
    policy.decide("http://games.example/a/b.html", "10.10.1.2", MONDAY_9)
    policy.decide("http://Games.Example/%7Eu", "10.10.1.2", MONDAY_9)  # full parser: escapes to normalise
    assert policy._caches.parse.cache_info().misses == 1  # type: ignore[attr-defined]
    assert policy._caches.authorities is not None and "games.example" in policy._caches.authorities.young


@pytest.mark.parametrize(
    ("clock", "expected"),
    [  # local times (UTC+7) of a Monday around the lessons window's edges (07:00-17:00), second by second
        ([(6, 59, 59, 0.0), (6, 59, 59, 0.999), (7, 0, 0, 0.0), (7, 0, 0, 0.5), (7, 0, 1, 0.0)],
         ["allow", "allow", "block", "block", "block"]),
        ([(16, 59, 59, 0.2), (16, 59, 59, 0.9), (17, 0, 0, 0.0), (17, 0, 0, 0.7), (16, 59, 59, 0.1)],
         ["block", "block", "allow", "allow", "block"]),  # the last: a clock stepped back
    ],
)
def test_the_per_second_memo_expires_at_a_schedule_edge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    clock: list, expected: list[str]) -> None:
    """decide(at=None) reuses the active schedules within the current second: the next second (or another
    one) recomputes, so a window edge takes effect on its first second, as on the uncached path."""
    doc = _document(tmp_path, regex=False)
    cached, reference = compile_policy(doc), compile_policy(doc, cache_size=0)
    got = []
    for h, m, s, frac in clock:
        now = dt.datetime(2026, 11, 23, h, m, s, tzinfo=TZ).timestamp() + frac
        monkeypatch.setattr("time.time", lambda now=now: now)
        for client in ("10.10.1.2", "10.10.1.3"):  # students: games blocked in lessons only
            decision = cached.decide("http://games.example/", client)
            _same(decision, reference.decide("http://games.example/", client))
        got.append(decision.action)
        assert ("lessons" in decision.schedules) == (decision.action == "block")
    assert got == expected


def test_decide_now_agrees_too(tmp_path: Path) -> None:
    doc = _document(tmp_path, regex=True)
    cached, reference = compile_policy(doc), compile_policy(doc, cache_size=0)
    for url in _urls(500, seed=7):
        for client in CLIENTS:
            a, b = cached.decide(url, client), reference.decide(url, client)
            if a.schedules == b.schedules:  # a window edge can pass between the two calls
                _same(a, b)


_url_parts = st.tuples(
    st.sampled_from(SCHEMES[:3]),
    st.sampled_from(HOSTS),
    st.lists(st.sampled_from(list("aZ09-._~!$&()*+,;=:@/?[]^|%#\\ é") + ["/./", "/../", "%2e", "%2E%2e", "?q=game",
                                                                          "/play", "/admin", ".exe", "/search"]),
             max_size=8).map("".join),
)


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> tuple[Policy, Policy]:
    doc = _document(tmp_path_factory.mktemp("fastpath"), regex=True)
    return compile_policy(doc, cache_size=32), compile_policy(doc, cache_size=0)


@settings(max_examples=600, deadline=None)
@given(_url_parts, st.sampled_from(CLIENTS))
def test_property_cached_equals_uncached(policies: tuple[Policy, Policy], parts: tuple[str, str, str],
                                         client: str | None) -> None:
    cached, reference = policies
    url = "".join(parts)
    for _ in range(2):  # the second call hits the caches
        _same(cached.decide(url, client, MONDAY_9), reference.decide(url, client, MONDAY_9))


@pytest.mark.parametrize(
    ("tail", "canonical"),
    [("/", True), ("/a/b.html", True), ("/a?q=1&r=2", True), ("/A:B@c", True), ("/a?", False), ("/a?b?", False),
     ("/./a", False), ("/a/..", False), ("/.hidden", False), ("/%41", False), ("/a#f", False), ("/a b", False),
     ("/a\\b", False), ("/é", False), ("/a\t", False), ("/a'b", False)],
)
def test_tail_is_canonical(tail: str, canonical: bool) -> None:
    assert tail_is_canonical(tail) is canonical


def test_generational_cache_is_bounded_and_keeps_recent_keys() -> None:
    computed: list[int] = []
    cache = GenerationalCache(100, lambda k: computed.append(k) or k * 2 + 1)

    def get(k: int) -> int:  # as the engine reads it: young inline, then the miss path
        return cache.young.get(k) or cache.lookup(k)

    for k in range(1000):
        assert get(k) == 2 * k + 1
        assert get(7) == 15  # used all along: promoted from the old generation, never recomputed
    assert computed.count(7) == 1
    assert len(cache) <= 200
    assert cache.find(0) is None and cache.young[999] == 1999  # 0 was evicted long ago
    cache.clear()
    assert len(cache) == 0


def test_decision_matched_is_match_objects(tmp_path: Path) -> None:
    d = compile_policy(_document(tmp_path, regex=False)).decide("http://www.casino.example/", None)
    assert d.matched == (Match("gambling", "ut1/gambling", "casino.example"),)
    assert d.matched[0].entry == "casino.example"
    assert dataclasses.is_dataclass(d) is False and d._fields[6] == "matched"


# ---------------------------------------------------------------------- EngineCaches: what size 0 and clear() do

def _counting_caches(size: int, calls: list[str]) -> EngineCaches:
    def counting(name: str) -> Any:
        def compute(*args: object) -> tuple[str, tuple[object, ...]]:
            calls.append(name)
            return name, args
        return compute

    return EngineCaches(size, parse=counting("parse"), host=counting("host"), host_facts=counting("host_facts"),
                        outcome=counting("outcome"), authority=counting("authority"))


@pytest.mark.parametrize(("size", "computed"), [(0, 3), (1, 1), (4, 1)])
@pytest.mark.parametrize(
    ("cache", "key"),
    [("parse", ("http://a.example/x",)), ("host", ("A.example",)), ("host_facts", ("a.example",)),
     ("outcome", ("a.example", "/x", "", None, "students", ("lessons",)))],
)
def test_request_caches_compute_once_per_key_unless_size_is_0(cache: str, key: tuple[Any, ...], size: int,
                                                              computed: int) -> None:
    calls: list[str] = []
    lookup = getattr(_counting_caches(size, calls), cache)
    assert [lookup(*key) for _ in range(3)] == [(cache, key)] * 3
    assert calls == [cache] * computed


@pytest.mark.parametrize(("size", "computed"), [(0, None), (1, 1), (4, 1)])
def test_the_authority_cache_is_absent_at_size_0(size: int, computed: int | None) -> None:
    calls: list[str] = []
    authorities = _counting_caches(size, calls).authorities
    if computed is None:
        assert authorities is None
        return
    assert authorities is not None
    assert [authorities.young.get("a.example") or authorities.lookup("a.example") for _ in range(3)] == [
        ("authority", ("a.example",))] * 3
    assert calls == ["authority"] * computed


def _filled(caches: EngineCaches) -> dict[str, bool]:
    def lru_filled(fn: Any) -> bool:
        return hasattr(fn, "cache_info") and fn.cache_info().currsize > 0

    return {
        "parse": lru_filled(caches.parse), "host": lru_filled(caches.host),
        "host_facts": lru_filled(caches.host_facts), "outcome": lru_filled(caches.outcome),
        "authorities": caches.authorities is not None and len(caches.authorities) > 0,
        "verdicts": bool(caches.verdicts), "groups": bool(caches.groups),
        "schedule_memo": caches.schedule_memo != NO_SECOND, "set_facts": bool(caches.set_facts),
    }


# What a few requests leave in each cache, with caches off (cache_size=0) and on.
FILLED = [
    # cache          size 0  on
    ("parse",         False, True),   # the full parser's URLs
    ("host",          False, True),   # decide_host's raw hosts
    ("host_facts",    False, True),
    ("outcome",       False, True),
    ("authorities",   False, True),   # the fast path
    ("verdicts",      False, True),   # the fast path's verdicts
    ("groups",        True,  True),   # memos that make even the uncached path what it is: client -> group,
    ("schedule_memo", True,  True),   # the schedules of the current second,
    ("set_facts",     True,  True),   # and each list-set's meaning (a table compiled lazily)
]


@pytest.mark.parametrize("cache_size", [0, 64])
def test_cache_size_0_turns_the_request_caches_off_and_clear_empties_all(tmp_path: Path, cache_size: int) -> None:
    policy = compile_policy(_document(tmp_path, regex=False), cache_size=cache_size)
    for url in ("http://games.example/a", "http://Games.Example/%7Eu", "http://portal.example/play"):
        policy.decide(url, "10.10.1.2", MONDAY_9)
    policy.decide_host("Casino.Example", "10.10.1.2", MONDAY_9)
    expected = {cache: (on if cache_size else off) for cache, off, on in FILLED}
    assert _filled(policy._caches) == expected
    assert set(expected) == set(EngineCaches.__slots__) - {"_lru", "size"}  # the table names every cache
    policy.clear_caches()
    assert _filled(policy._caches) == dict.fromkeys(expected, False)
    # Decisions after clear() are the same again.
    reference = compile_policy(_document(tmp_path, regex=False), cache_size=0)
    _same(policy.decide("http://games.example/a", "10.10.1.2", MONDAY_9),
          reference.decide("http://games.example/a", "10.10.1.2", MONDAY_9))


@pytest.mark.parametrize(
    ("remember", "memo", "limit", "key", "value"),
    [("remember_group", "groups", GROUP_MEMO_LIMIT, "10.10.1.2", "students"),
     ("remember_verdict", "verdicts", VERDICT_LIMIT, (("games",), (), "students", ()), ("allow", None, "default"))],
)
def test_the_memos_forget_everything_when_full(remember: str, memo: str, limit: int, key: Any, value: Any) -> None:
    caches = _counting_caches(4, [])
    held = getattr(caches, memo)
    held.update({n: value for n in range(limit - 1)})
    assert getattr(caches, remember)(key, value) == value and len(held) == limit  # not full yet: kept
    assert getattr(caches, remember)("next", value) == value and held == {"next": value}  # full: forgotten
