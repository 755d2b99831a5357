"""Teachers' class actions as a tier of the policy: allow / block / lock / pause x locked rules and categories
x subgroups x expiry, on a real compiled policy (policies.class_actions)."""

from __future__ import annotations

import pytest

from classgate.policies import Policy, load_policy
from classgate.policies.class_actions import ClassAction, ClassActionError, ClassActions, refusal, site_host

POLICY = """\
classgate: 1
name: class-actions
categories:
  adult: {domains: [adult.test], locked: true}
  games: {domains: [games.test]}
  edu:   {domains: [edu.test]}
groups:
  students: {networks: [10.0.0.0/16]}
  teachers: {networks: [10.1.0.0/16]}
rules:
  - {name: harmful, action: block, locked: true, domains: [casino.test]}
  - {name: exam-site, action: allow, locked: true, domains: [exam.test]}
  - {name: no-games, action: block, categories: [games, adult]}
default: allow
"""
OVERLAY = """\
classgate: 1
overlay: true
groups:
  class-10a: {networks: [10.0.10.0/24]}   # inside students: a subgroup of it
"""
STUDENT, CLASS_10A, TEACHER = "10.0.0.5", "10.0.10.5", "10.1.0.5"
NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    d = tmp_path_factory.mktemp("class-actions")
    (d / "policy.yaml").write_text(POLICY, encoding="utf-8")
    (d / "overlay.yaml").write_text(OVERLAY, encoding="utf-8")
    return load_policy(d / "policy.yaml", d / "overlay.yaml")


def act(kind: str, group: str = "students", *sites: str, starts: float = NOW - 60, until: float = NOW + 3600,
        id: str = "") -> ClassAction:
    return ClassAction(id=id or f"{kind}-{group}-{len(sites)}", kind=kind, group=group,  # type: ignore[arg-type]
                       sites=sites, starts=starts, until=until, by="lan")


ALLOW_GAMES = act("allow", "students", "games.test")
PAUSE = act("pause", "students")


@pytest.mark.parametrize(
    ("actions", "url", "client", "now", "expected"),
    [
        # no action: the policy's own decisions
        ((), "http://games.test/", STUDENT, NOW, ("block", "department", "no-games")),
        # allow: loosens a school/Department rule, for the group and its subgroups only
        ((ALLOW_GAMES,), "http://games.test/", STUDENT, NOW, ("allow", "teacher", ALLOW_GAMES.rule)),
        ((ALLOW_GAMES,), "http://www.games.test/x", STUDENT, NOW, ("allow", "teacher", ALLOW_GAMES.rule)),
        ((ALLOW_GAMES,), "http://games.test/", CLASS_10A, NOW, ("allow", "teacher", ALLOW_GAMES.rule)),
        ((act("allow", "class-10a", "games.test"),), "http://games.test/", STUDENT, NOW,
         ("block", "department", "no-games")),  # a subgroup's action does not reach its parent
        ((act("allow", "teachers", "games.test"),), "http://games.test/", STUDENT, NOW,
         ("block", "department", "no-games")),
        # allow never loosens a locked rule, nor a blocked destination in a locked category
        ((act("allow", "students", "casino.test"),), "http://casino.test/", STUDENT, NOW,
         ("block", "locked", "harmful")),
        ((act("allow", "students", "adult.test"),), "http://adult.test/", STUDENT, NOW,
         ("block", "department", "no-games")),
        # expiry: in force on [starts, until)
        ((ALLOW_GAMES,), "http://games.test/", STUDENT, ALLOW_GAMES.until, ("block", "department", "no-games")),
        ((ALLOW_GAMES,), "http://games.test/", STUDENT, ALLOW_GAMES.until - 0.001,
         ("allow", "teacher", ALLOW_GAMES.rule)),
        ((ALLOW_GAMES,), "http://games.test/", STUDENT, ALLOW_GAMES.starts - 1, ("block", "department", "no-games")),
        # block: the site and its subdomains, for the group
        ((act("block", "students", "edu.test", id="b1"),), "http://www.edu.test/", STUDENT, NOW,
         ("block", "teacher", "teacher-block:b1")),
        ((act("block", "students", "edu.test"),), "http://notedu.test/", STUDENT, NOW, ("allow", "default", None)),
        ((act("block", "students", "edu.test"),), "http://edu.test/", TEACHER, NOW, ("allow", "default", None)),
        ((act("block", "students", "exam.test"),), "http://exam.test/", STUDENT, NOW,
         ("allow", "locked", "exam-site")),  # a locked allow decides before any teacher
        # lock: only these sites; they are allowed like an allow (never past a lock)
        ((act("lock", "students", "edu.test", id="l1"),), "http://edu.test/", STUDENT, NOW,
         ("allow", "teacher", "teacher-lock:l1")),
        ((act("lock", "students", "edu.test", id="l1"),), "http://other.test/", CLASS_10A, NOW,
         ("block", "teacher", "teacher-lock:l1")),
        ((act("lock", "students", "games.test", id="l2"),), "http://games.test/", STUDENT, NOW,
         ("allow", "teacher", "teacher-lock:l2")),
        ((act("lock", "students", "adult.test"),), "http://adult.test/", STUDENT, NOW,
         ("block", "department", "no-games")),
        ((act("lock", "students", "edu.test"),), "http://casino.test/", STUDENT, NOW, ("block", "locked", "harmful")),
        ((act("lock", "students", "edu.test"),), "http://other.test/", TEACHER, NOW, ("allow", "default", None)),
        # pause: everything for the group and its subgroups, never another group, never past a locked rule
        ((PAUSE,), "http://edu.test/", STUDENT, NOW, ("block", "teacher", PAUSE.rule)),
        ((PAUSE,), "http://edu.test/", CLASS_10A, NOW, ("block", "teacher", PAUSE.rule)),
        ((PAUSE,), "http://edu.test/", TEACHER, NOW, ("allow", "default", None)),
        ((PAUSE,), "http://exam.test/", STUDENT, NOW, ("allow", "locked", "exam-site")),
        ((act("pause", "students", until=NOW),), "http://edu.test/", STUDENT, NOW, ("allow", "default", None)),
        # several actions: the most restrictive wins, whatever the order they were made in
        ((ALLOW_GAMES, PAUSE), "http://games.test/", STUDENT, NOW, ("block", "teacher", PAUSE.rule)),
        ((act("allow", "students", "edu.test", starts=NOW - 10), act("block", "class-10a", "edu.test", id="b2")),
         "http://edu.test/", CLASS_10A, NOW, ("block", "teacher", "teacher-block:b2")),
        ((act("allow", "students", "edu.test", id="a3"), act("block", "class-10a", "edu.test")),
         "http://edu.test/", STUDENT, NOW, ("allow", "teacher", "teacher-allow:a3")),
        ((act("lock", "students", "edu.test", id="l3"), act("allow", "students", "games.test")),
         "http://games.test/", STUDENT, NOW, ("block", "teacher", "teacher-lock:l3")),
        # a URL that cannot be understood stays the filter's error
        ((ALLOW_GAMES,), "http://[::1/", STUDENT, NOW, ("block", "error", None)),
    ],
)
def test_decisions(policy: Policy, actions: tuple[ClassAction, ...], url: str, client: str, now: float,
                   expected: tuple[str, str, str | None]) -> None:
    decision = ClassActions(actions).apply(policy, policy.decide(url, client=client), now)
    assert (decision.action, decision.tier, decision.rule) == expected
    base = policy.decide(url, client=client)
    # What the tier changes is the verdict only: the facts the decision was made on stay the policy's.
    assert (decision.group, decision.host, decision.categories, decision.url) == (
        base.group, base.host, base.categories, base.url)


@pytest.mark.parametrize(
    ("actions", "host", "client", "expected"),
    [
        ((PAUSE,), "edu.test", STUDENT, ("block", "teacher")),  # the TLS gate: a paused group gets no passthrough
        ((ALLOW_GAMES,), "games.test", STUDENT, ("allow", "teacher")),
        ((act("lock", "students", "edu.test"),), "203.0.113.9", STUDENT, ("block", "teacher")),
        ((PAUSE,), "edu.test", TEACHER, ("allow", "default")),
    ],
)
def test_host_decisions(policy: Policy, actions: tuple[ClassAction, ...], host: str, client: str,
                        expected: tuple[str, str]) -> None:
    decision = ClassActions(actions).apply(policy, policy.decide_host(host, client=client), NOW)
    assert (decision.action, decision.tier) == expected


def test_explain_names_the_deciding_action(policy: Policy) -> None:
    actions = ClassActions([ALLOW_GAMES, PAUSE])
    decision, action = actions.explain(policy, policy.decide("http://games.test/", client=STUDENT), NOW)
    assert action == PAUSE and decision.rule == PAUSE.rule
    assert actions.explain(policy, policy.decide("http://x.test/", client=TEACHER), NOW)[1] is None


@pytest.mark.parametrize(
    ("kind", "group", "sites", "expected"),
    [
        ("allow", "students", ["games.test"], None),
        ("allow", "students", ["casino.test"], "the Department's locked rule 'harmful' blocks it"),
        ("allow", "class-10a", ["casino.test"], "locked rule 'harmful'"),
        ("allow", "students", ["adult.test"], "locked category 'adult' (blocked by rule 'no-games')"),
        ("lock", "students", ["edu.test", "www.adult.test"], "www.adult.test stays blocked for group 'students'"),
        ("allow", "students", ["exam.test"], None),  # a locked allow: allowing it loosens nothing
        ("block", "students", ["casino.test"], None),  # blocking more never loosens a lock
        ("pause", "teachers", [], None),
        ("allow", "studnets", ["games.test"], "the policy has no group 'studnets'"),
    ],
)
def test_refusal(policy: Policy, kind: str, group: str, sites: list[str], expected: str | None) -> None:
    why = refusal(policy, kind, group, sites)  # type: ignore[arg-type]
    if expected is None:
        assert why is None
    else:
        assert why is not None and expected in why


@pytest.mark.parametrize(
    ("text", "host"),
    [("example.com", "example.com"), ("https://www.Example.com/page?q=1", "www.example.com"),
     ("EXAMPLE.com.", "example.com"), ("bücher.example", "xn--bcher-kva.example")],
)
def test_site_host(text: str, host: str) -> None:
    assert site_host(text) == host


@pytest.mark.parametrize("text", ["", "http://", "exa mple.com"])
def test_site_host_refuses(text: str) -> None:
    with pytest.raises(ClassActionError, match="is not a site"):
        site_host(text)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({**ALLOW_GAMES.to_json(), "kind": "unblock"}, "unknown kind 'unblock'"),
        ({k: v for k, v in ALLOW_GAMES.to_json().items() if k != "until"}, "not a class action"),
        ({**ALLOW_GAMES.to_json(), "starts": "soon"}, "not a class action"),
        ("allow", "not a class action"),
    ],
)
def test_record_errors(record: object, message: str) -> None:
    with pytest.raises(ClassActionError, match=message):
        ClassAction.from_json(record)


def test_record_round_trip() -> None:
    assert ClassAction.from_json(ALLOW_GAMES.to_json()) == ALLOW_GAMES


def test_no_actions_is_the_policy_itself(policy: Policy) -> None:
    decision = policy.decide("http://games.test/", client=STUDENT)
    assert ClassActions().apply(policy, decision, NOW) is decision
