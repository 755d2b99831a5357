"""The decision engine on a small policy written out as a table: rule order, tiers, groups, schedules,
URL entries, errors (block with tier "error"), SNI decisions, caching and the compiled-index cache."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest

from classgate.policies.engine import compile_policy
from classgate.policies.errors import PolicyError, Position
from classgate.policies.model import Category, Document, Group, Rule, Schedule, Source, TimeWindow

TZ = dt.timezone(dt.timedelta(hours=7))  # Asia/Ho_Chi_Minh has no DST: a fixed offset is the same
MONDAY_9 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=TZ)
MONDAY_20 = dt.datetime(2026, 11, 23, 20, 0, tzinfo=TZ)
STUDENT, TEACHER, GUEST = "10.10.1.2", "10.20.0.5", "192.0.2.1"


def _lists(root: Path) -> Path:
    ut1 = root / "ut1"
    for rel, text in {
        "gambling/domains": "casino.example\nbet.example\n",
        "games/domains": "games.example\nbet.example\n",
        "games/urls": "portal.example/play\nportal.example/search?q=game\n",
        "social/domains": "social.example\n",
    }.items():
        (ut1 / rel).parent.mkdir(parents=True, exist_ok=True)
        (ut1 / rel).write_text(text)
    (root / "extra.hosts").write_text("0.0.0.0 tracker.example\n")
    return ut1


@pytest.fixture()
def doc(tmp_path: Path) -> Document:
    ut1 = _lists(tmp_path)
    lessons = Schedule("lessons", (TimeWindow(days=frozenset(range(5)), start=dt.time(7), end=dt.time(17)),))
    return Document(
        name="test",
        sources={"ut1": Source("ut1", "ut1", ut1), "extra": Source("extra", "hosts", tmp_path / "extra.hosts")},
        categories={
            "gambling": Category("gambling", include=("ut1/gambling",), locked=True),
            "games": Category("games", include=("ut1/games",)),
            "social": Category("social", include=("ut1/social",), domains=("chat.example",)),
            "trackers": Category("trackers", include=("extra",)),
        },
        groups={
            "students": Group("students", (ipaddress.ip_network("10.10.0.0/16"),)),
            "teachers": Group("teachers", (ipaddress.ip_network("10.20.0.0/16"),)),
        },
        schedules={"lessons": lessons},
        rules=(
            Rule("no-gambling", "block", categories=("gambling",), tier="locked", locked=True),
            Rule("school-allow-wiki", "allow", domains=("wiki.social.example",), tier="school"),
            Rule("teachers-anything", "allow", groups=("teachers",)),
            Rule("games-in-lessons", "block", groups=("students",), when=("lessons",), categories=("games",)),
            Rule("no-social", "block", categories=("social",)),
            Rule("no-trackers", "block", categories=("trackers",)),
            Rule("no-exe", "block", regex=(r"\.exe$",)),
            Rule("block-admin-path", "block", urls=("intranet.example/admin",)),
        ),
        default="allow",
    )


@pytest.mark.parametrize(
    ("url", "client", "at", "action", "rule", "tier", "categories"),
    [
        ("http://casino.example/", STUDENT, MONDAY_9, "block", "no-gambling", "locked", ("gambling",)),
        ("http://WWW.Casino.Example./x", TEACHER, MONDAY_20, "block", "no-gambling", "locked", ("gambling",)),
        ("http://bet.example/", GUEST, MONDAY_20, "block", "no-gambling", "locked", ("gambling", "games")),
        ("http://games.example/", STUDENT, MONDAY_9, "block", "games-in-lessons", "department", ("games",)),
        ("http://games.example/", STUDENT, MONDAY_20, "allow", None, "default", ("games",)),
        ("http://games.example/", GUEST, MONDAY_9, "allow", None, "default", ("games",)),
        ("http://portal.example/play/level1", STUDENT, MONDAY_9, "block", "games-in-lessons", "department", ("games",)),
        ("http://portal.example/PLAY", STUDENT, MONDAY_9, "block", "games-in-lessons", "department", ("games",)),
        ("http://portal.example/player", STUDENT, MONDAY_9, "allow", None, "default", ()),
        ("http://portal.example/", STUDENT, MONDAY_9, "allow", None, "default", ()),
        ("http://portal.example/search?q=game&page=2", STUDENT, MONDAY_9, "block", "games-in-lessons", "department",
         ("games",)),
        ("http://portal.example/search?q=other", STUDENT, MONDAY_9, "allow", None, "default", ()),
        ("http://wiki.social.example/", STUDENT, MONDAY_9, "allow", "school-allow-wiki", "school", ("social",)),
        ("http://social.example/", STUDENT, MONDAY_9, "block", "no-social", "department", ("social",)),
        ("http://social.example/", TEACHER, MONDAY_9, "allow", "teachers-anything", "department", ("social",)),
        ("http://x.chat.example/", STUDENT, MONDAY_9, "block", "no-social", "department", ("social",)),
        ("https://tracker.example/p.gif", GUEST, None, "block", "no-trackers", "department", ("trackers",)),
        ("http://downloads.example/setup.exe", STUDENT, MONDAY_9, "block", "no-exe", "department", ()),
        ("http://intranet.example/admin/users", STUDENT, MONDAY_9, "block", "block-admin-path", "department", ()),
        ("http://intranet.example/administration", STUDENT, MONDAY_9, "allow", None, "default", ()),
        ("http://edu.vn@casino.example/", STUDENT, MONDAY_9, "block", "no-gambling", "locked", ("gambling",)),
        ("http://xcasino.example/", STUDENT, MONDAY_9, "allow", None, "default", ()),
        ("http://unlisted.example/", None, None, "allow", None, "default", ()),
        # Google Translate's website proxy serving a listed site (policies/proxied_origins.py): that site.
        ("https://www-casino-example.translate.goog/?_x_tr_sl=auto&_x_tr_tl=vi", GUEST, None, "block",
         "no-gambling", "locked", ("gambling",)),
        ("https://portal-example.translate.goog/play/1", STUDENT, MONDAY_9, "block", "games-in-lessons",
         "department", ("games",)),  # the proxy keeps the path: the site's `urls` entries hold
        ("https://portal-example.translate.goog/", STUDENT, MONDAY_9, "allow", None, "default", ()),
        ("https://wiki-social-example.translate.goog/", STUDENT, MONDAY_9, "allow", "school-allow-wiki", "school",
         ("social",)),
        ("https://unlisted-example.translate.goog/", STUDENT, MONDAY_9, "allow", None, "default", ()),
    ],
)
def test_decide(doc: Document, url: str, client: str | None, at: dt.datetime | None, action: str,
                rule: str | None, tier: str, categories: tuple[str, ...]) -> None:
    for cache_size in (0, 1024):
        policy = compile_policy(doc, cache_size=cache_size)
        for _ in range(2):  # second time from the caches
            d = policy.decide(url, client=client, at=at)
            assert (d.action, d.rule, d.tier, d.categories) == (action, rule, tier, categories), cache_size
            assert d.error is None


def test_decision_explains_matches(doc: Document) -> None:
    d = compile_policy(doc).decide("http://www.bet.example/", client=STUDENT, at=MONDAY_9)
    assert {(m.category, m.source, m.entry) for m in d.matched} == {
        ("gambling", "ut1/gambling", "bet.example"), ("games", "ut1/games", "bet.example")}
    assert d.group == "students" and d.schedules == ("lessons",)
    assert d.host == "www.bet.example" and d.url == "http://www.bet.example/"
    inline = compile_policy(doc).decide("http://chat.example/", client=GUEST)
    assert inline.matched[0].source == "inline"


@pytest.mark.parametrize("url", ["http://exa mple.com/", "http://[::1/", "javascript:alert(1)", "", "http://%zz/"])
def test_malformed_urls_block_with_tier_error(doc: Document, url: str) -> None:
    d = compile_policy(doc).decide(url, client=STUDENT)
    assert (d.action, d.tier, d.rule) == ("block", "error", None)
    assert d.error and d.group == "students"


def test_internal_failure_blocks(doc: Document) -> None:
    policy = compile_policy(doc)

    def explode(*_args: object) -> None:
        raise RuntimeError("index gone")

    policy._caches.host_facts = explode  # type: ignore[assignment]
    d = policy.decide("http://fine.example/", client=STUDENT)
    assert (d.action, d.tier) == ("block", "error") and "RuntimeError" in (d.error or "")
    assert policy.decide_host("fine.example").tier == "error"
    assert policy.decide(None).tier == "error"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "client", "action", "rule", "needs_path"),
    [
        ("casino.example", STUDENT, "block", "no-gambling", False),
        ("CASINO.example.", STUDENT, "block", "no-gambling", False),
        ("social.example", TEACHER, "allow", "teachers-anything", False),
        ("portal.example", STUDENT, "allow", None, True),  # games urls under this host: the path decides
        ("unlisted.example", STUDENT, "allow", None, True),  # the regex rule looks at every path
        ("bad host", STUDENT, "block", None, False),
        # The SNI or DNS name of Google Translate's proxy for a site: decided as that site, undecrypted.
        ("bet-example.translate.goog", GUEST, "block", "no-gambling", False),
        ("www--casino--example-translate-goog.translate.goog", GUEST, "block", "no-gambling", False),
        ("translate.goog", GUEST, "allow", None, True),
    ],
)
def test_decide_host(doc: Document, host: str, client: str, action: str, rule: str | None, needs_path: bool) -> None:
    d = compile_policy(doc).decide_host(host, client=client, at=MONDAY_9)
    assert (d.action, d.rule, d.needs_path) == (action, rule, needs_path)


def test_needs_path_is_false_without_path_rules(doc: Document) -> None:
    rules = tuple(r for r in doc.rules if not r.regex and not r.urls)
    policy = compile_policy(Document(**{**doc.__dict__, "rules": rules}))
    assert policy.decide_host("unlisted.example").needs_path is False


def test_missing_list_names_the_include_position(doc: Document) -> None:
    pos = Position("department.yaml", 12, 5)
    cats = {**doc.categories, "ghost": Category("ghost", include=("ut1/ghost",), pos=pos)}
    with pytest.raises(PolicyError) as err:
        compile_policy(Document(**{**doc.__dict__, "categories": cats}))
    [problem] = err.value.problems
    assert (problem.file, problem.line, problem.col) == ("department.yaml", 12, 5)
    assert "ut1/ghost" in problem.message


def test_version_follows_list_content(doc: Document, tmp_path: Path) -> None:
    first = compile_policy(doc).version
    assert compile_policy(doc).version == first
    (tmp_path / "ut1" / "social" / "domains").write_text("social.example\nmore.example\n")
    assert compile_policy(doc).version != first


def test_cache_dir_reuses_the_compiled_index(doc: Document, tmp_path: Path) -> None:
    cache = tmp_path / "compiled"
    cold = compile_policy(doc, cache)
    warm = compile_policy(doc, cache)
    assert (cold.stats.index_cached, warm.stats.index_cached) == (False, True)
    assert len(list(cache.iterdir())) == 1
    for url in ("http://casino.example/", "http://portal.example/play", "http://unlisted.example/"):
        assert warm.decide(url, STUDENT, MONDAY_9) == cold.decide(url, STUDENT, MONDAY_9)
    # A changed list gets a new index, never the stale one.
    (tmp_path / "ut1" / "social" / "domains").write_text("social.example\nnew.example\n")
    changed = compile_policy(doc, cache)
    assert not changed.stats.index_cached
    assert changed.decide("http://new.example/", GUEST).rule == "no-social"
    # Old indexes are pruned: the cache dir does not grow with every list update.
    for n in range(6):
        (tmp_path / "ut1" / "social" / "domains").write_text(f"social.example\nv{n}.example\n")
        compile_policy(doc, cache)
    assert len(list(cache.glob("index-*.cgidx"))) == 4
    # A damaged cache file is rebuilt, not trusted.
    for f in cache.iterdir():
        f.write_bytes(b"garbage")
    rebuilt = compile_policy(doc, cache)
    assert rebuilt.decide("http://casino.example/", GUEST).rule == "no-gambling"


def test_policy_attributes(doc: Document) -> None:
    policy = compile_policy(doc)
    assert policy.name == "test" and str(policy.timezone) == "Asia/Ho_Chi_Minh"
    assert policy.categories == ("gambling", "games", "social", "trackers")
    assert set(policy.groups) == {"students", "teachers", "default"}
    assert policy.group_of(STUDENT) == "students" and policy.group_of("garbage") == "default"
    assert policy.stats.rules == 8 and policy.stats.list_entries >= 9 and policy.stats.junk_lines == 0
    assert len(policy.version) == 16


def test_naive_time_is_policy_local(doc: Document) -> None:
    policy = compile_policy(doc)
    naive = dt.datetime(2026, 11, 23, 9, 0)  # 09:00 in Ho Chi Minh City: lessons
    assert policy.decide("http://games.example/", STUDENT, naive).rule == "games-in-lessons"
    utc_2am = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)  # = 09:00 +07
    assert policy.decide("http://games.example/", STUDENT, utc_2am).rule == "games-in-lessons"


def test_schedule_edges_with_the_per_second_memo(doc: Document) -> None:
    policy = compile_policy(doc)
    just_before = dt.datetime(2026, 11, 23, 16, 59, 59, 999000, tzinfo=TZ)
    at_end = dt.datetime(2026, 11, 23, 17, 0, 0, tzinfo=TZ)
    # Same second twice (memo hit), then the next second: the window is half-open [07:00, 17:00).
    assert policy.decide("http://games.example/", STUDENT, just_before).rule == "games-in-lessons"
    assert policy.decide("http://games.example/", STUDENT, just_before).rule == "games-in-lessons"
    assert policy.decide("http://games.example/", STUDENT, at_end).rule is None
    assert policy.decide("http://games.example/", STUDENT, just_before).rule == "games-in-lessons"


def test_concurrent_decisions_match_serial_ones(doc: Document) -> None:
    from concurrent.futures import ThreadPoolExecutor

    policy = compile_policy(doc, cache_size=64)  # small caches: eviction races are exercised too
    urls = [f"http://{h}/p{i % 7}" for i in range(400) for h in ("casino.example", "games.example",
                                                                   f"u{i}.example", "portal.example")]
    reference = compile_policy(doc, cache_size=0)
    serial = [reference.decide(u, STUDENT, MONDAY_9)[:5] for u in urls]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda u: policy.decide(u, STUDENT, MONDAY_9)[:5], urls))
    assert parallel == serial


@pytest.mark.parametrize(
    ("host", "canonical"),
    [("CASINO.example.", "casino.example"), ("ex%61mple.org", "example.org"), ("bücher.example", "xn--bcher-kva.example"),
     ("0x7f.1", "127.0.0.1"), ("[0::1]", "[::1]")],
)
def test_decide_host_canonicalises(doc: Document, host: str, canonical: str) -> None:
    assert compile_policy(doc).decide_host(host).host == canonical
