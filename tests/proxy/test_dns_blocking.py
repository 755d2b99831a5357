"""proxy/dns/blocking.py: what the policy makes of a DNS question, per group, time and name."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from classgate.policies import Policy, load_policy
from classgate.proxy.dns.blocking import plan_query
from classgate.proxy.dns.known_names import ENCRYPTED_DNS, under

SHARED_DOH = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "doh"
UT1 = SHARED_DOH.parent / "ut1"

POLICY = """\
classgate: 1
name: dns-unit
timezone: Asia/Ho_Chi_Minh
categories:
  gambling:  {domains: [casino.test]}
  social:    {domains: [social.test]}
  video:     {domains: [video.test]}
groups:
  teachers: {networks: [10.20.0.0/24]}
  students: {networks: [10.10.0.0/16]}
  phones:   {networks: [10.30.0.0/16]}
schedules:
  class_hours:
    - {days: mon-fri, from: "07:00", to: "11:30"}
rules:
  - {name: harmful, action: block, categories: [gambling]}
  - {name: edu-videos, action: allow, urls: [tube.test/edu]}
  - {name: no-tube, action: block, domains: [tube.test]}
  - {name: no-shorts, action: block, urls: [video.test/shorts]}
  - {name: focus, action: block, groups: [students], when: class_hours, categories: [social]}
default: allow
safe_search: {google: strict, bing: moderate, duckduckgo: strict, youtube: moderate}
tls: {inspect_groups: [teachers]}
"""

TEACHER, STUDENT, PHONE, GUEST = "10.20.0.5", "10.10.3.4", "10.30.1.1", "192.168.9.9"
MONDAY_9, MONDAY_13 = dt.datetime(2026, 11, 23, 9, 0), dt.datetime(2026, 11, 23, 13, 0)


@pytest.fixture(scope="module")
def policy(tmp_path_factory) -> Policy:
    path = tmp_path_factory.mktemp("policy") / "policy.yaml"
    path.write_text(POLICY)
    return load_policy(path)


CASES = [
    # (name, client, time, kind, special, target, category)
    ("casino.test", STUDENT, MONDAY_9, "block", None, None, "gambling"),
    ("www.casino.test", TEACHER, MONDAY_13, "block", None, None, "gambling"),
    ("social.test", STUDENT, MONDAY_9, "block", None, None, "social"),  # in class
    ("social.test", STUDENT, MONDAY_13, "forward", None, None, "social"),  # after class
    ("social.test", TEACHER, MONDAY_9, "forward", None, None, "social"),  # not their rule
    ("video.test", STUDENT, MONDAY_9, "forward", None, None, "video"),  # only /shorts is blocked: per request
    ("tube.test", PHONE, MONDAY_9, "forward", None, None, "uncategorized"),  # blocked, but /edu is allowed first
    ("allowed.test", GUEST, MONDAY_9, "forward", None, None, "uncategorized"),
    ("use-application-dns.net", TEACHER, MONDAY_9, "nxdomain", "canary", None, "uncategorized"),
    ("x.use-application-dns.net", PHONE, MONDAY_9, "nxdomain", "canary", None, "uncategorized"),
    ("mask.icloud.com", PHONE, MONDAY_9, "nxdomain", "private_relay", None, "uncategorized"),
    ("mask-h2.icloud.com", TEACHER, MONDAY_9, "nxdomain", "private_relay", None, "uncategorized"),
    ("www.icloud.com", PHONE, MONDAY_9, "forward", None, None, "uncategorized"),
    ("dns.google", TEACHER, MONDAY_9, "block", "encrypted_dns", None, "uncategorized"),
    ("mozilla.cloudflare-dns.com", PHONE, MONDAY_9, "block", "encrypted_dns", None, "uncategorized"),
    ("www.google.com", PHONE, MONDAY_9, "safesearch", "safesearch", "forcesafesearch.google.com", "uncategorized"),
    ("www.google.com.vn", GUEST, MONDAY_9, "safesearch", "safesearch", "forcesafesearch.google.com",
     "uncategorized"),
    ("google.de", STUDENT, MONDAY_9, "safesearch", "safesearch", "forcesafesearch.google.com", "uncategorized"),
    ("www.bing.com", PHONE, MONDAY_9, "safesearch", "safesearch", "strict.bing.com", "uncategorized"),
    ("duckduckgo.com", PHONE, MONDAY_9, "safesearch", "safesearch", "safe.duckduckgo.com", "uncategorized"),
    ("www.youtube.com", PHONE, MONDAY_9, "safesearch", "safesearch", "restrictmoderate.youtube.com",
     "uncategorized"),
    ("m.youtube.com", STUDENT, MONDAY_9, "safesearch", "safesearch", "restrictmoderate.youtube.com",
     "uncategorized"),
    ("www.google.com", TEACHER, MONDAY_9, "forward", None, None, "uncategorized"),  # inspected: the proxy rewrites
    ("mail.google.com", PHONE, MONDAY_9, "forward", None, None, "uncategorized"),  # not a search host
    ("classgate.ca", GUEST, MONDAY_9, "gateway", None, None, "uncategorized"),
    ("", STUDENT, MONDAY_9, "forward", None, None, "uncategorized"),  # the root
    # Google Translate's proxy for a site is that site (policies/proxied_origins.py), for every device.
    ("www-casino-test.translate.goog", GUEST, MONDAY_13, "block", None, None, "gambling"),
    ("social-test.translate.goog", STUDENT, MONDAY_9, "block", None, None, "social"),
    ("allowed-test.translate.goog", STUDENT, MONDAY_9, "forward", None, None, "uncategorized"),
]


@pytest.mark.parametrize(("name", "client", "at", "kind", "special", "target", "category"), CASES,
                         ids=[f"{c[0] or '.'}-{c[1]}-{c[2]:%H}" for c in CASES])
def test_plan(policy: Policy, name: str, client: str, at: dt.datetime, kind: str, special: str | None,
              target: str | None, category: str) -> None:
    plan = plan_query(policy, name, client, at.replace(tzinfo=policy.timezone), ca_host="classgate.ca")
    assert (plan.kind, plan.special, plan.target, plan.category) == (kind, special, target, category)
    assert plan.group == policy.group_of(client)


@pytest.mark.parametrize(
    ("levels", "name", "target"),
    [
        ("{google: strict}", "www.google.com", "forcesafesearch.google.com"),
        ("{google: moderate}", "www.google.com", "forcesafesearch.google.com"),
        ("{google: off}", "www.google.com", None),
        ("{youtube: strict}", "www.youtube.com", "restrict.youtube.com"),
        ("{youtube: moderate}", "www.youtube.com", "restrictmoderate.youtube.com"),
        ("{youtube: off}", "www.youtube.com", None),
        ("{bing: strict}", "bing.com", "strict.bing.com"),
        ("{bing: off}", "www.bing.com", None),
        ("{duckduckgo: moderate}", "start.duckduckgo.com", "safe.duckduckgo.com"),
        ("{duckduckgo: off}", "duckduckgo.com", None),
    ],
)
def test_safesearch_level_per_engine(tmp_path: Path, levels: str, name: str, target: str | None) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(f"classgate: 1\nname: levels\nsafe_search: {levels}\n")
    plan = plan_query(load_policy(path), name, GUEST, None)
    assert (plan.kind, plan.target) == (("safesearch", target) if target else ("forward", None))


def doh_names() -> set[str]:
    if not SHARED_DOH.exists():
        pytest.skip(f"shared DoH lists absent ({SHARED_DOH})")
    names = set()
    for line in (SHARED_DOH / "dibdot-DoH-IP-blocklists" / "doh-domains_overall.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            names.add(line.strip().lower())
    for line in (SHARED_DOH / "oneoffdallas-dohservers" / "list.txt").read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2:
            names.add(words[1].lower())
    return names


def test_built_in_encrypted_dns_names_are_published_doh_resolvers() -> None:
    published = doh_names() | {line.strip().lower() for line in (UT1 / "doh" / "domains").read_text().splitlines()}
    assert ENCRYPTED_DNS <= published, ENCRYPTED_DNS - published


def test_every_published_doh_resolver_gets_the_block_answer_through_the_policy(tmp_path: Path) -> None:
    """The published lists as policy sources (and UT1's `doh` category): every name in them is blocked at DNS."""
    names = doh_names()
    path = tmp_path / "policy.yaml"
    path.write_text(
        "classgate: 1\nname: doh\nsources:\n"
        f"  dibdot: {{format: domains, path: {SHARED_DOH / 'dibdot-DoH-IP-blocklists' / 'doh-domains_overall.txt'}}}\n"
        f"  dallas: {{format: hosts, path: {SHARED_DOH / 'oneoffdallas-dohservers' / 'list.txt'}}}\n"
        f"  ut1: {{format: ut1, path: {UT1}}}\n"
        "categories:\n  circumvention: {include: [dibdot, dallas, ut1/doh]}\n"
        "rules:\n  - {name: no-doh, action: block, categories: [circumvention]}\n"
    )
    policy = load_policy(path, cache_dir=tmp_path / "cache")
    plans = {name: plan_query(policy, name, STUDENT, None) for name in sorted(names)}
    # (The lists carry Private Relay's and Firefox's canary names too: those get NXDOMAIN, by our own rule.)
    not_blocked = sorted(n for n, p in plans.items() if p.kind not in ("block", "nxdomain"))
    # The list readers skip what is no host name (an address in a name list); nothing else may resolve.
    assert all(n.replace(".", "").isdigit() or ":" in n for n in not_blocked), not_blocked[:20]
    assert len(names) > 1900
    assert sum(under(n, ENCRYPTED_DNS) for n in names) >= len(ENCRYPTED_DNS)
