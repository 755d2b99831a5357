"""The decision engine: a Document compiled once into the form that decides many times.

`compile_policy(doc)` reads and indexes every list the rules can look at (policies.listindex), resolves
rule conditions to sets, and returns a `Policy`. `Policy.decide` canonicalises the URL, finds the client's
group and the active schedules, looks the destination up in the index, and walks the rules in order:
the first rule whose conditions all hold decides; none -> the document's default.

Caches (policies.fastpath.EngineCaches, each bounded by `cache_size`; 0 turns them off, for measuring): parsed
URLs by raw text, canonical hosts by raw host, destination facts by canonical host, and whole outcomes by
(host, path if it matters, group, active schedules); and, in front of them, the per-authority fast path: most
requests go to a host seen a moment ago, so the raw authority of an http(s) URL is looked up as it comes and,
where the path cannot change the outcome, the decision comes from there and from one verdict per (categories,
rule hits, group, schedules), without parsing the URL again. The fast path only takes URLs whose rest the full
parser would keep as it is, so it gives exactly the full path's decision (tests/policies/test_fastpath.py
compares every field).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import xxhash

from classgate.policies.canonical import canonical_host, canonical_url, is_plain_host
from classgate.policies.decision import Decision, PolicyStats, error_decision, make_decision
from classgate.policies.errors import PolicyError, Problem, UrlError
from classgate.policies.fastpath import (
    AuthorityEntry,
    Dest,
    EngineCaches,
    HostFacts,
    Outcome,
    RawMatch,
    SetFacts,
    Verdict,
    VerdictKey,
    rest_needs_work,
)
from classgate.policies.groups import GroupResolver, group_path
from classgate.policies.index.build import content_digest, load_index, plan_lists
from classgate.policies.index.table import DomainIndex
from classgate.policies.model import DEFAULT_GROUP, Document, Rule
from classgate.policies.proxied_origins import proxied_origins
from classgate.policies.schedules import END_OF_DAY, active_schedules

log = logging.getLogger("classgate.policy")
# The longest URL decided at all; longer ones are blocked unread (every per-request step stays bounded).
MAX_URL_LENGTH = 16384
# The longest URL whose parse and outcome are cached: a cache of 65,536 entries of this size stays ~70 MB
# at the very worst; longer URLs (rare, seldom the same twice) are decided uncached.
CACHED_URL_LENGTH = 1024
# A DNS name is at most 253 characters; percent-encoded or Unicode spellings of one stay well below this.
MAX_HOST_LENGTH = 1024
DEFAULT_CACHE_SIZE = 65536
# Sentinel outcome (compared by identity, never returned): the host has `urls` entries, so the path matters.
# Shaped as a failure, so that a slip would block.
_PATH_NEEDED: Outcome = ("block", "path-needed", "error", (), ())
_NO_DEST: Dest = ((), (), (), ())


class _CompiledRule:
    __slots__ = (
        "any_destination",
        "categories",
        "groups",
        "path_sensitive",
        "position",
        "regex",
        "verdict",
        "when",
    )

    def __init__(self, position: int, rule: Rule, covered: Callable[[Iterable[str]], frozenset[str]]):
        self.position = position
        self.verdict: Verdict = (rule.action, rule.name, rule.tier)
        # The groups named and every subgroup of theirs: the per-request check stays one set lookup.
        self.groups = covered(rule.groups) or None
        self.when = frozenset(rule.when) or None
        self.categories = frozenset(rule.categories)
        self.regex = tuple(re.compile(r) for r in rule.regex)
        self.any_destination = not rule.has_destination
        # Could this rule's verdict depend on the path (for decide_host's needs_path)?
        self.path_sensitive = bool(rule.regex or rule.urls or rule.categories)


class Policy:
    """A compiled policy. Thread-safe for deciding; build it with compile_policy()."""

    def __init__(self, doc: Document, index: DomainIndex, list_categories: dict[str, tuple[str, ...]],
                 version: str, stats: PolicyStats, warnings: list[Problem], cache_size: int, *,
                 lists_digest: str = ""):
        self.name = doc.name
        self.lists_digest = lists_digest  # what the index was built from (the last good copy keeps it)
        self.index_file: Path | None = index.path
        self.timezone = ZoneInfo(doc.timezone)
        self.categories: tuple[str, ...] = tuple(doc.categories)
        self.groups: tuple[str, ...] = tuple(dict.fromkeys((*doc.groups, DEFAULT_GROUP)))
        self.safe_search = doc.safe_search
        # Groups form a tree (policies.groups): what names a group covers its subgroups too.
        self._paths = {name: frozenset(group_path(doc.groups, name)) for name in self.groups}
        self.tls = replace(doc.tls, inspect_groups=self.covered_groups(doc.tls.inspect_groups))
        self.block_page = doc.block_page
        self.default = doc.default
        self.version = version
        self.stats = stats
        self.warnings = warnings
        self.document = doc
        # By name, for what acts on a decision after the engine (the warn page, quotas, the block page's reason).
        self._rules_by_name = {r.name: r for r in reversed(doc.rules)}  # reversed: the first of a name wins
        self._index = index
        self._rules = tuple(_CompiledRule(i, r, self.covered_groups) for i, r in enumerate(doc.rules))
        self._default_verdict: Verdict = (doc.default, None, "default")
        self._has_regex = any(r.regex for r in self._rules)
        self._groups = GroupResolver(doc.groups)
        self._schedules = tuple(doc.schedules.values())
        # Active schedules can be memoised per second only if no window edge falls inside a second.
        self._schedules_by_second = all(
            t.microsecond == 0 or t == END_OF_DAY for s in self._schedules for w in s.windows for t in (w.start, w.end)
        )
        self._list_categories = [list_categories.get(name, ()) for name in index.lists]
        self._list_rule = [int(n.split(":", 1)[1]) if n.startswith("rule:") else -1 for n in index.lists]
        self._caches = EngineCaches(cache_size, parse=canonical_url, host=canonical_host,
                                    host_facts=self._host_facts_uncached, outcome=self._outcome_uncached,
                                    authority=self._authority_entry)

    # ------------------------------------------------------------------ public API

    def rule(self, name: str | None) -> Rule | None:
        """The rule a decision names (`Decision.rule`), or None for the default."""
        return self._rules_by_name.get(name) if name is not None else None

    def group_of(self, client_ip: str | None) -> str:
        return self._groups.group_of(client_ip)

    def group_path(self, group: str) -> tuple[str, ...]:
        """`group` and the groups it is part of, innermost first ("vip", "students")."""
        return group_path(self.document.groups, group)

    def covered_groups(self, named: Iterable[str]) -> frozenset[str]:
        """The groups a rule or setting naming `named` applies to: those and every subgroup of theirs."""
        wanted = frozenset(named)
        return frozenset(g for g, path in self._paths.items() if not wanted.isdisjoint(path))

    def decide(self, url: str, client: str | None = None, at: dt.datetime | None = None) -> Decision:
        """The decision for a full URL. Never raises: a malformed URL or an internal failure blocks."""
        group = DEFAULT_GROUP
        try:
            caches = self._caches
            group = caches.groups.get(client) or self._group_of(client)
            if len(url) > MAX_URL_LENGTH:
                # Browsers and servers stop far below this (nginx: 8 KB of request line by default); past it a
                # URL is an attack on the filter's time or memory: blocked without being read.
                return error_decision(f"the URL is longer than {MAX_URL_LENGTH} characters", group)
            authorities = caches.authorities
            if authorities is None or len(url) > CACHED_URL_LENGTH:
                return self._decide_full(url, group, at, None)
            try:
                schedules = self._schedules_at(at)
            except Exception:  # noqa: BLE001 - the full path reports it, in its own order
                return self._decide_full(url, group, at, None)
            # The fast path, written out here (a call costs ~2% of a decision): a plain http(s) URL whose
            # authority was seen before and whose rest needs no normalising. Else the full parser.
            if url.startswith("http://"):
                origin, start = "http://", 7
            elif url.startswith("https://"):
                origin, start = "https://", 8
            else:
                start = 0
            if start:
                slash = url.find("/", start)
                if slash < 0:
                    authority, tail = url[start:], "/"
                else:
                    authority, tail = url[start:slash], url[slash:]
                entry = authorities.young.get(authority)
                if entry is None:
                    entry = authorities.lookup(authority)
                # entry False: an authority the fast path leaves to the full parser (kept, so judged once);
                # a rest with escapes, dot segments, a fragment...: the full parser normalises it.
                if entry and (tail == "/" or rest_needs_work(tail) is None):  # tail_is_canonical, inline
                    host, path_matters, categories, rule_hits, matched = entry
                    text = origin + host + tail
                    if path_matters:  # URL entries under the host, or regex rules: the outcome cache
                        path, _, query = tail.partition("?")
                        if self._has_regex:
                            outcome = caches.outcome(host, path, query, text, group, schedules)
                        else:
                            outcome = caches.outcome(host, path.lower(), query, None, group, schedules)
                        action, rule, tier, categories, matched = outcome
                    else:
                        # Rules look at a destination only through its categories and rule hits: one verdict
                        # per such combination (a few hundred at most) serves every host that shares it.
                        key = (categories, rule_hits, group, schedules)
                        action, rule, tier = caches.verdicts.get(key) or self._verdict(key)
                    return make_decision(action=action, rule=rule, tier=tier, group=group, categories=categories,
                                         schedules=schedules, matched=matched, host=host, url=text)
            return self._decide_full(url, group, at, schedules)
        except Exception as exc:  # noqa: BLE001 - fail closed, whatever went wrong
            log.error("decision failed (blocked): %s: %s", type(exc).__name__, exc)
            return error_decision(f"internal error: {type(exc).__name__}", group)

    def decide_host(self, host: str, client: str | None = None, at: dt.datetime | None = None, *,
                    group: str | None = None) -> Decision:
        """The decision for a host alone (TLS SNI, CONNECT). `needs_path` says a rule looking at the path
        could change it, so the caller should decrypt and decide again on the full URL. `group`: decide for
        this group instead of the client's (a teacher's action is checked for a group, not a device)."""
        named_group = group
        group = DEFAULT_GROUP
        try:
            caches = self._caches
            group = named_group or caches.groups.get(client) or self._group_of(client)
            if len(host) > MAX_HOST_LENGTH:
                return error_decision(f"the host is longer than {MAX_HOST_LENGTH} characters", group)
            try:
                canonical = caches.host(host)
            except UrlError as exc:
                return error_decision(f"malformed host: {exc}", group)
            schedules = self._schedules_at(at)
            dest, url_hosts = caches.host_facts(canonical)
            (action, rule, tier), needs_path = self._first_rule(dest, group, schedules, None, url_hosts)
            return make_decision(action=action, rule=rule, tier=tier, group=group, categories=dest[0],
                                 schedules=schedules, matched=dest[3], host=canonical, url=canonical,
                                 needs_path=needs_path)
        except Exception as exc:  # noqa: BLE001
            log.error("host decision failed (blocked): %s: %s", type(exc).__name__, exc)
            return error_decision(f"internal error: {type(exc).__name__}", group)

    def clear_caches(self) -> None:
        self._caches.clear()

    # The benchmark (bench/bench_engine.py) reads its hit rates from these.

    @property
    def _parse(self) -> object:
        return self._caches.parse

    @property
    def _host_facts(self) -> object:
        return self._caches.host_facts

    @property
    def _outcome(self) -> object:
        return self._caches.outcome

    @property
    def _authorities(self) -> object:
        return self._caches.authorities

    # ------------------------------------------------------------------ internals

    def _group_of(self, client: str | None) -> str:
        return self._caches.remember_group(client, self._groups.group_of(client))

    def _schedules_at(self, at: dt.datetime | None) -> tuple[str, ...]:
        """The schedules active at `at` (now when None), memoised for the second."""
        if not self._schedules:
            return ()
        if at is None:
            ts = time.time()
        elif at.tzinfo is None:  # a naive time is read as wall-clock time in the policy's zone
            ts = at.replace(tzinfo=self.timezone).timestamp()
        else:
            ts = at.timestamp()
        second = int(ts)  # whole seconds (positive times: int() is floor)
        memo = self._caches.schedule_memo  # kept only when the schedules change on whole seconds
        if memo[0] == second:
            return memo[1]
        active = active_schedules(self._schedules, dt.datetime.fromtimestamp(ts, self.timezone))
        if self._schedules_by_second:
            self._caches.schedule_memo = (second, active)
        return active

    def _decide_full(self, url: str, group: str, at: dt.datetime | None,
                     schedules: tuple[str, ...] | None) -> Decision:
        """Parse the URL (the cached parser when caches are on) and decide, at `at` or with the `schedules`
        active then; an error Decision for a malformed URL; raises only on internal errors."""
        cached = len(url) <= CACHED_URL_LENGTH  # nothing above this size is kept: a flood of huge URLs
        try:                                     # must not fill the caches' memory
            cu = self._caches.parse(url) if cached else canonical_url(url)
        except UrlError as exc:
            return error_decision(f"malformed URL: {exc}", group)
        if schedules is None:
            schedules = self._schedules_at(at)
        host, text = cu.host, cu.text
        outcome_of = self._caches.outcome if cached else self._outcome_uncached
        # The path (and query) are part of the outcome only where they can change it: under hosts with
        # `urls` entries, or for every URL when some rule has a regex. Elsewhere one entry per host serves.
        if self._has_regex:
            outcome = outcome_of(host, cu.path, cu.query, text, group, schedules)
        else:
            outcome = outcome_of(host, None, None, None, group, schedules)
            if outcome is _PATH_NEEDED:
                outcome = outcome_of(host, cu.path.lower(), cu.query, None, group, schedules)
        action, rule, tier, categories, matched = outcome
        return make_decision(action=action, rule=rule, tier=tier, group=group, categories=categories,
                             schedules=schedules, matched=matched, host=host, url=text)

    def _verdict(self, key: VerdictKey) -> Verdict:
        categories, rule_hits, group, schedules = key
        verdict, _ = self._first_rule((categories, categories, rule_hits, ()), group, schedules, "")
        return self._caches.remember_verdict(key, verdict)

    def _authority_entry(self, authority: str) -> AuthorityEntry:
        """What the fast path needs to know about a raw authority (the text between "//" and the next "/"):
        (canonical host, whether the path can change the outcome, categories, rule hits, matches); False when
        the fast path must leave URLs with this authority to the full parser."""
        # The full parser ends the authority at the first of "/\\?#": with none of the last three in it,
        # the URL's authority is exactly this text, whatever follows. Empty: "http:///x" strips slashes.
        # Spaces and controls: the full parser strips them at the ends of a URL, so "http://h " is "http://h"
        # but "http://h /" is an error. ":" (a port, userinfo, IPv6): the origin would depend on the scheme.
        # All such authorities are left to the full parser.
        if (not authority or "\\" in authority or "?" in authority or "#" in authority or ":" in authority
                or min(authority) <= " "):
            return False
        if is_plain_host(authority):
            host = authority  # most hosts: already canonical, nothing to parse
        else:
            try:
                cu = canonical_url("http://" + authority + "/")
            except UrlError:
                return False  # the full path reports the error with the whole URL in the message
            if cu.path != "/" or cu.query or cu.port != 80:
                return False
            host = cu.host
        (categories, _, rule_hits, matched), url_hosts = self._caches.host_facts(host)
        return (host, bool(url_hosts) or self._has_regex, categories, rule_hits, matched)

    def _outcome_uncached(self, host: str, path: str | None, query: str | None, text: str | None, group: str,
                          schedules: tuple[str, ...]) -> Outcome:
        dest, url_hosts = self._caches.host_facts(host)
        if url_hosts:
            if path is None and text is None:
                return _PATH_NEEDED  # `urls` entries under this host: the caller asks again with the path
            dest = self._merge(dest, self._index.url_hits(url_hosts, path or "/", query or ""))
        verdict, _ = self._first_rule(dest, group, schedules, text or "")
        return (*verdict, dest[0], dest[3])

    def _first_rule(self, dest: Dest, group: str, schedules: tuple[str, ...], url_text: str | None,
                    url_hosts: tuple[str, ...] = ()) -> tuple[Verdict, bool]:
        """The verdict of the first rule whose conditions all hold (the default's when none), for a URL whose
        canonical text regex rules test, or for a host alone (`url_text` None): then regex rules do not hold,
        and the second value says whether a rule before the deciding one looks at the path (a regex, or `urls`
        entries and categories under `url_hosts`), so the full URL could be decided otherwise."""
        _, cats, rule_hits, _ = dest
        needs_path = False
        for rule in self._rules:
            if rule.groups is not None and group not in rule.groups:
                continue
            if rule.when is not None and rule.when.isdisjoint(schedules):
                continue
            if rule.any_destination or not rule.categories.isdisjoint(cats) or rule.position in rule_hits:
                return rule.verdict, needs_path
            if url_text is None:
                if rule.regex or (url_hosts and rule.path_sensitive):
                    needs_path = True
            elif rule.regex and any(rx.search(url_text) for rx in rule.regex):
                return rule.verdict, False
        return self._default_verdict, needs_path

    def _host_facts_uncached(self, host: str) -> HostFacts:
        hits, url_hosts = self._index.lookup_host(host)
        # A web proxy's host that names the site it serves (policies/proxied_origins.py) is that site as well:
        # its rules see the categories of both. The proxy keeps the site's path, so its `urls` entries apply too.
        for origin in proxied_origins(host):
            origin_hits, origin_url_hosts = self._index.lookup_host(origin)
            hits += origin_hits
            url_hosts += origin_url_hosts
        # Tuples, not lists: the cyclic GC untracks tuples of strings, so cached facts cost it nothing.
        return (self._merge(_NO_DEST, hits) if hits else _NO_DEST), tuple(url_hosts)

    def _facts_of_set(self, sid: int) -> SetFacts:
        """What one list-set means in this policy: (categories sorted, as a set, rule positions, and
        (category, source) pairs for Match); computed once per list-set."""
        set_facts = self._caches.set_facts
        facts = set_facts.get(sid)
        if facts is None:
            cats: set[str] = set()
            rules: set[int] = set()
            pairs: list[tuple[str, str]] = []
            for list_id in sorted(self._index.list_sets[sid]):
                name = self._index.lists[list_id]
                if self._list_rule[list_id] >= 0:
                    rules.add(self._list_rule[list_id])
                for cat in self._list_categories[list_id]:
                    cats.add(cat)
                    pairs.append((cat, "inline" if name.startswith("category:") else name))
            names = tuple(sorted(cats))
            facts = set_facts[sid] = (names, names, tuple(sorted(rules)), tuple(pairs))
        return facts

    def _merge(self, dest: Dest, hits: list[tuple[str, int]]) -> Dest:
        if not hits:
            return dest
        if len(hits) == 1 and dest is _NO_DEST:  # the usual hit: one listed suffix, nothing to combine
            entry, sid = hits[0]
            names, cats, rules, pairs = self._facts_of_set(sid)
            return names, cats, rules, tuple([(cat, source, entry) for cat, source in pairs])
        all_cats = set(dest[1])
        all_rules = set(dest[2])
        matched: list[RawMatch] = list(dest[3])
        for entry, sid in hits:
            _, cats, rules, pairs = self._facts_of_set(sid)
            all_cats.update(cats)
            all_rules.update(rules)
            matched.extend([(cat, source, entry) for cat, source in pairs])
        names = tuple(sorted(all_cats))
        return names, names, tuple(sorted(all_rules)), tuple(matched)


def compile_policy(doc: Document, cache_dir: Path | None = None, *, cache_size: int = DEFAULT_CACHE_SIZE,
                   compiled: CompiledIndex | None = None) -> Policy:
    """Compile a validated Document; raises PolicyError (e.g. a missing list file, with the include's position).

    `compiled`: use this already compiled index (its file and the digest of the lists it was built from)
    instead of reading the lists: the last good policy, when the lists on disk may have changed since."""
    started = time.perf_counter()
    try:
        ZoneInfo(doc.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyError([Problem("<policy>", 0, 0, f"unknown time zone {doc.timezone!r}")]) from None
    refs, list_categories, problems = plan_lists(doc, check_files=compiled is None)
    if problems:
        raise PolicyError(problems)
    if compiled is not None:
        try:
            index, cached, digest = DomainIndex.open(compiled.file), True, compiled.lists_digest
        except (OSError, ValueError) as exc:  # IndexFormatError is a ValueError
            raise PolicyError([Problem(str(compiled.file), 0, 0, f"the kept compiled index cannot be used: {exc}")]
                              ) from None
    else:
        try:
            digest = content_digest(doc, refs)
        except OSError as exc:
            raise PolicyError([Problem(str(getattr(exc, "filename", "") or "<lists>"), 0, 0,
                                       f"cannot read list: {exc.strerror or exc}")]) from None
        index, cached = load_index(doc, refs, digest, cache_dir)
    version = _version(doc, digest)
    entries = sum(index.counts)
    stats = PolicyStats(
        rules=len(doc.rules), categories=len(doc.categories), lists=len(index.lists), list_entries=entries,
        index_keys=index.size, index_bytes=index.nbytes, junk_lines=sum(index.junk_lines),
        compile_seconds=time.perf_counter() - started, index_cached=cached,
    )
    warnings = [*doc.warnings, *index.problems]
    return Policy(doc, index, list_categories, version, stats, warnings, cache_size, lists_digest=digest)


@dataclass(frozen=True)
class CompiledIndex:
    """An index compiled earlier, and the digest of the lists it holds."""

    file: Path
    lists_digest: str


def _version(doc: Document, lists_digest: str) -> str:
    h = xxhash.xxh3_128(lists_digest.encode())
    for path in doc.files:
        try:
            h.update(b"\0" + Path(path).read_bytes())
        except OSError:
            h.update(b"\0<unreadable>" + str(path).encode())
    return h.hexdigest()[:16]
