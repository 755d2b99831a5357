"""List subscriptions: real lists (../shared/data) from a real local HTTP server, changed and broken on purpose.

Every case starts from a first, good fetch, then the upstream changes or misbehaves and the list is fetched
again: the table says what becomes of it, and the old list must still be there, byte for byte, whenever the
new one was not accepted.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from classgate.agent.department.fetchstate import load_state, state_path
from classgate.agent.department.listfetch import FetchSettings, Outcome, fetch_lists
from classgate.agent.department.subscriptions import read_subscriptions
from classgate.agent.sync.transport import Limits
from tests.agent.lists_subscribe_support import GAMBLING, UT1, start_mirror, start_upstream, write_policy
from tests.agent.lists_upstream import ListUpstream, ut1_archive


@pytest.fixture
def upstream() -> Iterator[ListUpstream]:
    server = start_upstream()
    yield server
    server.close()


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[ListUpstream]:
    server = start_mirror(tmp_path)
    yield server
    server.close()


@pytest.fixture
def policy(tmp_path: Path, upstream: ListUpstream) -> Path:
    return write_policy(tmp_path, upstream.url)


def fetch(policy: Path, *names: str, mirror: str | None = None, **settings: object) -> dict[str, Outcome]:
    outcomes = fetch_lists(read_subscriptions(policy, names, mirror), FetchSettings(**settings))
    return {o.label: o for o in outcomes}


def real() -> bytes:
    return (GAMBLING / "domain.txt").read_bytes()


def first(share: float) -> Callable[[bytes], bytes]:
    def cut(data: bytes) -> bytes:
        lines = data.splitlines(keepends=True)
        return b"".join(lines[: int(len(lines) * share)])
    return cut


HTML = b"<!DOCTYPE html>\n<html><body><h1>502 Bad Gateway</h1></body></html>\n"
JUNK = b"".join(b"not a domain %d!\n" % i for i in range(10))

# (case, the upstream's new content from the real one, settings, status, message fragment or "+added -removed")
CONTENT_CASES = [
    ("grown", lambda b: b + b"new-casino-1.example\nnew-casino-2.example\n", {}, "updated", "+2 -0"),
    ("a-tenth-fewer", first(0.9), {}, "updated", "+0 -6575"),  # 65,759 lines, 65,758 distinct
    ("half-gone", first(0.5), {}, "refused", "would shrink from 65758 to 32879 entries (-50%, the limit is 20%)"),
    ("half-gone-forced", first(0.5), {"force": True}, "updated", "-32879"),
    ("half-gone-within-a-60%-limit", first(0.5), {"max_shrink": 0.6}, "updated", "-32879"),
    ("empty", lambda b: b"", {}, "refused", "came back empty (it has 65758 entries now)"),
    ("comments-only", lambda b: b"# hostsVN\n# nothing today\n", {}, "refused", "came back empty"),
    ("empty-forced", lambda b: b"", {"force": True}, "updated", "+0 -65758"),
    ("html-error-page", lambda b: HTML, {}, "refused", "an HTML or XML page, not a domains list"),
    ("html-error-page-forced", lambda b: HTML, {"force": True}, "refused", "an HTML or XML page"),
    ("hosts-file-instead", lambda b: (GAMBLING / "hosts").read_bytes(), {}, "refused",
     "65759 of 65759 lines are not one domain"),
    ("adblock-file-instead", lambda b: (GAMBLING / "filter-VN.txt").read_bytes(), {"force": True}, "refused",
     "lines are not one domain"),
    ("gzip-instead", lambda b: gzip.compress(b), {}, "refused", "binary data, not a domains list"),
    ("a-few-junk-lines", lambda b: b + JUNK, {}, "updated", "+0 -0"),
    ("mostly-junk", lambda b: first(0.05)(b) + JUNK * 400, {"force": True}, "refused", "not a domains list"),
]


@pytest.mark.parametrize(("case", "change", "settings", "status", "expect"), CONTENT_CASES,
                         ids=[c[0] for c in CONTENT_CASES])
def test_a_changed_list_is_checked_before_it_replaces_the_old_one(policy, upstream, case, change, settings,
                                                                  status, expect):
    assert fetch(policy, "hostsvn_gambling")["hostsvn_gambling"].status == "updated"
    target = policy.parent / "lists/hostsvn/gambling/domain.txt"
    state_before = load_state(state_path(target, False))
    new = change(real())
    upstream.serve("/hostsvn/gambling/domain.txt", new)
    outcome = fetch(policy, "hostsvn_gambling", **settings)["hostsvn_gambling"]
    assert outcome.status == status, outcome
    shown = f"+{outcome.added} -{outcome.removed}" if status == "updated" else outcome.message
    assert expect in shown
    if status == "updated":
        assert target.read_bytes() == new
        assert load_state(state_path(target, False)).entries == outcome.entries
    else:
        assert target.read_bytes() == real()  # the old list, byte for byte
        assert load_state(state_path(target, False)) == state_before
    assert sorted(p.name for p in target.parent.iterdir()) == [".domain.txt.fetch.json", "domain.txt"]


# (case, behaviour of the upstream, settings, message fragment); the fetch always fails and keeps the old list
SLOW = {"limits": Limits(connect_timeout=2, read_timeout=0.5, deadline=1.0)}
TRANSPORT_CASES = [
    ("http-500", "500", {}, "HTTP 500"),
    ("redirect", "redirect", {}, "HTTP 302 (redirects are not followed"),
    ("slow-drip-past-the-deadline", "drip", SLOW, "slower than the 1 s deadline"),
    ("stalled", "stall", SLOW, "no data for 0.5 s"),
    ("truncated", "truncate", {}, "connection closed after"),
    ("over-the-size-cap", "ok-but-big", {"file_bytes": 100_000}, "the cap is 100000"),
]


@pytest.mark.parametrize(("case", "behaviour", "settings", "expect"), TRANSPORT_CASES,
                         ids=[c[0] for c in TRANSPORT_CASES])
def test_a_failed_download_keeps_the_old_list(policy, upstream, case, behaviour, settings, expect):
    assert fetch(policy, "hostsvn_gambling")["hostsvn_gambling"].status == "updated"
    target = policy.parent / "lists/hostsvn/gambling/domain.txt"
    upstream.serve("/hostsvn/gambling/domain.txt", real() + b"changed.example\n")  # no 304 to hide behind
    upstream.on("/hostsvn/gambling/domain.txt", behaviour)
    outcome = fetch(policy, "hostsvn_gambling", **settings)["hostsvn_gambling"]
    assert (outcome.status, outcome.ok) == ("failed", False)
    assert expect in outcome.message and "the old list is kept" in outcome.message
    assert target.read_bytes() == real()
    assert sorted(p.name for p in target.parent.iterdir()) == [".domain.txt.fetch.json", "domain.txt"]


def test_a_first_fetch_that_fails_leaves_nothing_behind(policy, upstream):
    upstream.on("/hostsvn/gambling/domain.txt", "500")
    assert fetch(policy, "hostsvn_gambling")["hostsvn_gambling"].status == "failed"
    assert list((policy.parent / "lists/hostsvn/gambling").iterdir()) == []


# (case, what happens between the two fetches, request headers of the 2nd fetch, its answer, 2nd outcome)
CONDITIONAL_CASES = [
    ("etag-and-date", None, ("etag", "date"), 304, ("unchanged", "not modified")),
    ("last-modified-only", "no-etag", (None, "date"), 304, ("unchanged", "not modified")),
    ("no-validators-same-bytes", "no-validators", (None, None), 200, ("unchanged", "same content")),
    ("changed-upstream", "change", ("etag", "date"), 200, ("updated", "+1 -0")),
    ("list-edited-by-hand", "edit", (None, None), 200, ("updated", "+0 -1")),
    ("state-file-lost", "lose-state", (None, None), 200, ("unchanged", "same content")),
]


@pytest.mark.parametrize(("case", "between", "sent", "answer", "second"), CONDITIONAL_CASES,
                         ids=[c[0] for c in CONDITIONAL_CASES])
def test_an_unchanged_list_costs_one_small_request(policy, upstream, case, between, sent, answer, second):
    path = "/hostsvn/gambling/domain.txt"
    target = policy.parent / "lists/hostsvn/gambling/domain.txt"
    if between in ("no-etag", "no-validators"):
        upstream.on(path, between)
    fetch(policy, "hostsvn_gambling")
    if between == "change":
        upstream.serve(path, real() + b"brand-new-casino.example\n")
    elif between == "edit":
        target.write_bytes(target.read_bytes() + b"added-by-hand.example\n")
    elif between == "lose-state":
        state_path(target, False).unlink()
    outcome = fetch(policy, "hostsvn_gambling")["hostsvn_gambling"]
    last = upstream.requests(path)[-1]
    headers = ("etag" if last.if_none_match else None, "date" if last.if_modified_since else None)
    assert headers == sent
    assert last.status == answer
    shown = outcome.message if outcome.status == "unchanged" else f"+{outcome.added} -{outcome.removed}"
    assert (outcome.status, shown) == second
    assert len(upstream.requests(path)) == 2


def test_every_format_of_hostsvn_and_ut1_archives_are_fetched_whole(policy, upstream):
    outcomes = fetch(policy)
    assert {label: o.status for label, o in outcomes.items()} == {
        "hostsvn_gambling": "updated", "hostsvn_gambling_vn": "updated", "hostsvn_threat_vn": "updated",
        "ut1/gambling": "updated", "ut1/bank": "updated"}  # `own` has no url: not a subscription
    assert outcomes["hostsvn_gambling_vn"].entries == 3747  # SOURCE.md: 3,747 Vietnamese gambling domains
    lists = policy.parent / "lists"
    assert (lists / "hostsvn/gambling/hosts-VN").read_bytes() == (GAMBLING / "hosts-VN").read_bytes()
    for name in ("gambling", "bank"):
        for f in (UT1 / name).iterdir():
            assert (lists / "ut1" / name / f.name).read_bytes() == f.read_bytes()
    again = fetch(policy)
    assert {o.status for o in again.values()} == {"unchanged"}
    assert all(s.status == 304 for s in upstream.requests()[-5:])


# (case, the archive served for ut1/gambling, status, message fragment)
ARCHIVE_CASES = [
    ("unsafe-member", lambda: ut1_archive(UT1, "gambling", [("../evil", b"x")]), "failed", "refusing archive member"),
    ("not-an-archive", lambda: HTML, "failed", "not a readable tar.gz"),
    ("half-the-list", lambda: _archive_with("gambling", first(0.5)((UT1 / "gambling/domains").read_bytes())),
     "refused", "would shrink"),
    ("domains-as-html", lambda: _archive_with("gambling", HTML), "refused", "an HTML or XML page"),
]


def _archive_with(name: str, domains: bytes) -> bytes:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(f"{name}/domains")
        info.size = len(domains)
        tar.addfile(info, io.BytesIO(domains))
    return buffer.getvalue()


@pytest.mark.parametrize(("case", "archive", "status", "expect"), ARCHIVE_CASES, ids=[c[0] for c in ARCHIVE_CASES])
def test_a_bad_ut1_archive_keeps_the_old_list(policy, upstream, case, archive, status, expect):
    assert fetch(policy, "ut1/gambling")["ut1/gambling"].status == "updated"
    upstream.serve("/ut1-archives/gambling.tar.gz", archive())
    outcome = fetch(policy, "ut1/gambling")["ut1/gambling"]
    assert outcome.status == status and expect in outcome.message, outcome
    folder = policy.parent / "lists/ut1/gambling"
    assert (folder / "domains").read_bytes() == (UT1 / "gambling/domains").read_bytes()
    assert sorted(p.name for p in (policy.parent / "lists/ut1").iterdir()) == ["gambling"]  # no temp folders
    assert not (policy.parent / "lists/evil").exists() and not (policy.parent / "evil").exists()


def test_a_mirror_serves_the_same_paths_and_the_upstream_is_never_asked(policy, upstream, mirror):
    outcomes = fetch(policy, mirror=mirror.url + "/")
    assert {o.status for o in outcomes.values()} == {"updated"}
    assert upstream.requests() == []
    asked = {s.path: s.status for s in mirror.requests()}
    assert asked == {
        "/lists/hostsvn/gambling/domain.txt": 200, "/lists/hostsvn/gambling/hosts-VN": 200,
        "/lists/hostsvn/threat/filter-VN.txt": 200,
        "/lists/ut1/gambling/domains": 200, "/lists/ut1/gambling/urls": 200,
        "/lists/ut1/bank/domains": 200, "/lists/ut1/bank/urls": 404,  # UT1's bank has no urls: fine
    }
    assert (policy.parent / "lists/ut1/bank/domains").read_bytes() == (UT1 / "bank/domains").read_bytes()
    assert not (policy.parent / "lists/ut1/bank/urls").exists()


def test_validators_of_the_upstream_are_not_sent_to_a_mirror(policy, upstream, mirror):
    fetch(policy, "hostsvn_gambling")
    outcome = fetch(policy, "hostsvn_gambling", mirror=mirror.url)["hostsvn_gambling"]
    seen = mirror.requests("/lists/hostsvn/gambling/domain.txt")
    assert [(s.if_none_match, s.status) for s in seen] == [(None, 200)]
    assert (outcome.status, outcome.message) == ("unchanged", "same content")
