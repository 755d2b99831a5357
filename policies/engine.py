"""The decision engine: a Document compiled once into the form that decides many times.

`compile_policy(doc)` reads and indexes every list the rules can look at (policies.listindex), resolves
rule conditions to sets, and returns a `Policy`. `Policy.decide` canonicalises the URL, finds the client's
group and the active schedules, looks the destination up in the index, and walks the rules in order:
the first rule whose conditions all hold decides; none -> the document's default.

Caches (each bounded by `cache_size`; 0 turns them all off, for measuring): parsed URLs by raw text,
canonical hosts by raw host, destination facts by canonical host, and whole outcomes by (host, path if it
matters, group, active schedules) (functools.lru_cache each); and, in front of them, the per-authority fast
path (policies.fastpath): most requests go to a host seen a moment ago, so the raw authority of an http(s)
URL is looked up as it comes and, where the path cannot change the outcome, the decision comes from there and
from one verdict per (categories, rule hits, group, schedules), without parsing the URL again. The fast path
only takes URLs whose rest the full parser would keep as it is, so it gives exactly the full path's decision
(tests/engine/test_fastpath.py compares every field).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import xxhash

from classgate.policies.canonical import CanonicalUrl, canonical_host, canonical_url, is_plain_host
from classgate.policies.decision import Decision, PolicyStats, error_decision
from classgate.policies.errors import PolicyError, Problem, UrlError
from classgate.policies.fastpath import GenerationalCache, tail_is_canonical
from classgate.policies.groups import GroupResolver
from classgate.policies.index.build import content_digest, load_index, plan_lists
from classgate.policies.index.table import DomainIndex
from classgate.policies.model import DEFAULT_GROUP, Document, Rule
from classgate.policies.schedules import END_OF_DAY, active_schedules

log = logging.getLogger("classgate.policy")
DEFAULT_CACHE_SIZE = 65536
# Decision is a NamedTuple; building it through tuple.__new__ skips a Python-level __new__ per request.
_new_decision = functools.partial(tuple.__new__, Decision)
_GROUP_MEMO_LIMIT = 65536
_VERDICT_LIMIT = 4096  # (categories, rule hits, group, schedules) combinations: a few hundred in practice
_PATH_NEEDED = ("path-needed",)  # sentinel outcome: the host has `urls` entries, so the path matters

# A destination's facts: (categories sorted, the same again (probed by rules' category sets), rule positions
# whose own domains/urls hit, category matches as (category, source, entry)). Tuples only, never sets: the
# cyclic GC untracks tuples of strings and numbers, so millions of cached facts cost its collections nothing.
_Dest = tuple[tuple[str, ...], tuple[str, ...], tuple[int, ...], tuple]
_NO_DEST: _Dest = ((), (), (), ())


class _CompiledRule:
    __slots__ = (
        "action",
        "any_destination",
        "categories",
        "groups",
        "name",
        "path_sensitive",
        "position",
        "regex",
        "tier",
        "when",
    )

    def __init__(self, position: int, rule: Rule):
        self.position = position
        self.name, self.action, self.tier = rule.name, rule.action, rule.tier
        self.groups = frozenset(rule.groups) or None
        self.when = frozenset(rule.when) or None
        self.categories = frozenset(rule.categories)
        self.regex = tuple(re.compile(r) for r in rule.regex)
        self.any_destination = not rule.has_destination
        # Could this rule's verdict depend on the path (for decide_host's needs_path)?
        self.path_sensitive = bool(rule.regex or rule.urls or rule.categories)


class Policy:
    """A compiled policy. Thread-safe for deciding; build it with compile_policy()."""

    def __init__(self, doc: Document, index: DomainIndex, list_categories: dict[str, tuple[str, ...]],
                 version: str, stats: PolicyStats, warnings: list[Problem], cache_size: int):
        self.name = doc.name
        self.timezone = ZoneInfo(doc.timezone)
        self.categories: tuple[str, ...] = tuple(doc.categories)
        self.groups: tuple[str, ...] = tuple(dict.fromkeys((*doc.groups, DEFAULT_GROUP)))
        self.safe_search = doc.safe_search
        self.tls = doc.tls
        self.block_page = doc.block_page
        self.default = doc.default
        self.version = version
        self.stats = stats
        self.warnings = warnings
        self.document = doc
        self._index = index
        self._rules = tuple(_CompiledRule(i, r) for i, r in enumerate(doc.rules))
        self._has_regex = any(r.regex for r in self._rules)
        self._groups = GroupResolver(doc.groups)
        self._group_memo: dict[str | None, str] = {}  # client address -> group, read without a call
        self._schedules = tuple(doc.schedules.values())
        # Outcomes can be cached per second only if no window edge falls inside a second.
        self._schedules_by_second = all(
            t.microsecond == 0 or t == END_OF_DAY for s in self._schedules for w in s.windows for t in (w.start, w.end)
        )
        self._schedule_memo: tuple[int, tuple[str, ...]] = (-1, ())
        self._set_facts: dict[int, _Dest] = {}
        self._list_categories = [list_categories.get(name, ()) for name in index.lists]
        self._list_rule = [int(n.split(":", 1)[1]) if n.startswith("rule:") else -1 for n in index.lists]
        self._cache_size = cache_size
        if cache_size > 0:
            self._parse: Callable[[str], CanonicalUrl] = functools.lru_cache(cache_size)(canonical_url)
            self._host: Callable[[str], str] = functools.lru_cache(cache_size)(canonical_host)
            self._host_facts = functools.lru_cache(cache_size)(self._host_facts_uncached)
            self._outcome = functools.lru_cache(cache_size)(self._outcome_uncached)
            self._authorities: GenerationalCache | None = GenerationalCache(cache_size, self._authority_entry)
            self._verdicts: dict[tuple, tuple[str, str | None, str]] = {}
        else:
            self._authorities = None
            self._parse, self._host, self._host_facts = canonical_url, canonical_host, self._host_facts_uncached
            self._outcome = self._outcome_uncached

    # ------------------------------------------------------------------ public API

    def group_of(self, client_ip: str | None) -> str:
        return self._groups.group_of(client_ip)

    def _group_of(self, client: str | None) -> str:
        group = self._groups.group_of(client)
        if len(self._group_memo) >= _GROUP_MEMO_LIMIT:
            self._group_memo.clear()  # a school has a few thousand devices; this only bounds a flood
        self._group_memo[client] = group
        return group

    def decide(self, url: str, client: str | None = None, at: dt.datetime | None = None) -> Decision:
        """The decision for a full URL. Never raises: a malformed URL or an internal failure blocks."""
        group = DEFAULT_GROUP
        try:
            group = self._group_memo.get(client) or self._group_of(client)
            if self._authorities is None:
                return _new_decision(self._decide_full(url, group, at))
            if not self._schedules:
                schedules: tuple[str, ...] = ()
            elif at is None and self._schedules_by_second and (memo := self._schedule_memo)[0] == int(time.time()):
                schedules = memo[1]  # the common case: "now", in the same second as the previous request
            else:
                try:
                    schedules = self._active(at)
                except Exception:  # noqa: BLE001 - the full path reports it, in its own order
                    return _new_decision(self._decide_full(url, group, at))
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
                authorities = self._authorities
                entry = authorities.young.get(authority)
                if entry is None:
                    entry = authorities.lookup(authority)
                # entry False: an authority the fast path leaves to the full parser (kept, so judged once);
                # a rest with escapes, dot segments, a fragment...: the full parser normalises it.
                if entry and (tail == "/" or tail_is_canonical(tail)):
                    host, path_matters, categories, rule_hits, matched = entry
                    text = origin + host + tail
                    if path_matters:
                        return _new_decision(self._decide_with_path(host, tail, text, group, schedules))
                    # Rules look at a destination only through its categories and rule hits: one verdict per
                    # such combination (a few hundred at most) serves every host that shares it.
                    key = (categories, rule_hits, group, schedules)
                    verdict = self._verdicts.get(key) or self._verdict(key)
                    return _new_decision((*verdict, group, categories, schedules, matched, host, text, None, False))
            return _new_decision(self._decide_full(url, group, at))
        except Exception as exc:  # noqa: BLE001 - fail closed, whatever went wrong
            log.error("decision failed (blocked): %s: %s", type(exc).__name__, exc)
            return error_decision(f"internal error: {type(exc).__name__}", group)

    def _decide_full(self, url: str, group: str, at: dt.datetime | None) -> tuple:
        """Parse the URL (the cached parser when caches are on) and decide: the Decision's fields, or an error
        Decision for a malformed URL; raises only on internal errors."""
        try:
            cu = self._parse(url)
        except UrlError as exc:
            return error_decision(f"malformed URL: {exc}", group)
        if not self._schedules:
            schedules: tuple[str, ...] = ()
        elif at is None and self._schedules_by_second and (memo := self._schedule_memo)[0] == int(time.time()):
            schedules = memo[1]
        else:
            schedules = self._active(at)
        host, text = cu.host, cu.text
        # The path (and query) are part of the outcome only where they can change it: under hosts with
        # `urls` entries, or for every URL when some rule has a regex. Elsewhere one entry per host serves.
        if self._has_regex:
            outcome = self._outcome(host, cu.path, cu.query, text, group, schedules)
        else:
            outcome = self._outcome(host, None, None, None, group, schedules)
            if outcome is _PATH_NEEDED:
                outcome = self._outcome(host, cu.path.lower(), cu.query, None, group, schedules)
        action, rule, tier, categories, matched = outcome
        return (action, rule, tier, group, categories, schedules, matched, host, text, None, False)

    def _decide_with_path(self, host: str, tail: str, text: str, group: str, schedules: tuple[str, ...]) -> tuple:
        """The fast path's fields where the path can change the outcome (URL entries under the host, regex)."""
        path, _, query = tail.partition("?")
        if self._has_regex:
            outcome = self._outcome(host, path, query, text, group, schedules)
        else:
            outcome = self._outcome(host, path.lower(), query, None, group, schedules)
        action, rule, tier, categories, matched = outcome
        return (action, rule, tier, group, categories, schedules, matched, host, text, None, False)

    def _verdict(self, key: tuple) -> tuple[str, str | None, str]:
        categories, rule_hits, group, schedules = key
        action, rule, tier, _, _ = self._evaluate((categories, categories, rule_hits, ()), group, schedules, "")
        if len(self._verdicts) >= _VERDICT_LIMIT:
            self._verdicts.clear()
        self._verdicts[key] = verdict = (action, rule, tier)
        return verdict

    def _authority_entry(self, authority: str) -> tuple | bool:
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
        (categories, _, rule_hits, matched), url_hosts = self._host_facts(host)
        return (host, bool(url_hosts) or self._has_regex, categories, rule_hits, matched)

    def _outcome_uncached(self, host: str, path: str | None, query: str | None, text: str | None, group: str,
                          schedules: tuple[str, ...]) -> tuple:
        dest, url_hosts = self._host_facts(host)
        if url_hosts:
            if path is None and text is None:
                return _PATH_NEEDED  # `urls` entries under this host: the caller asks again with the path
            dest = self._merge(dest, self._index.url_hits(url_hosts, path or "/", query or ""))
        return self._evaluate(dest, group, schedules, text or "")

    def decide_host(self, host: str, client: str | None = None, at: dt.datetime | None = None) -> Decision:
        """The decision for a host alone (TLS SNI, CONNECT). `needs_path` says a rule looking at the path
        could change it, so the caller should decrypt and decide again on the full URL."""
        group = DEFAULT_GROUP
        try:
            group = self._groups.group_of(client)
            try:
                canonical = self._host(host)
            except UrlError as exc:
                return error_decision(f"malformed host: {exc}", group)
            schedules = self._active(at)
            dest, url_hosts = self._host_facts(canonical)
            categories, cats, rule_hits, matched = dest
            needs_path = False
            for rule in self._rules:
                if rule.groups is not None and group not in rule.groups:
                    continue
                if rule.when is not None and rule.when.isdisjoint(schedules):
                    continue
                if rule.any_destination or not rule.categories.isdisjoint(cats) or rule.position in rule_hits:
                    return Decision(rule.action, rule.name, rule.tier, group, categories, schedules, matched,
                                    canonical, canonical, None, needs_path)
                if rule.regex or (url_hosts and rule.path_sensitive):
                    needs_path = True
            return Decision(self.default, None, "default", group, categories, schedules, matched, canonical,
                            canonical, None, needs_path)
        except Exception as exc:  # noqa: BLE001
            log.error("host decision failed (blocked): %s: %s", type(exc).__name__, exc)
            return error_decision(f"internal error: {type(exc).__name__}", group)

    def clear_caches(self) -> None:
        for fn in (self._parse, self._host, self._host_facts, self._outcome):
            getattr(fn, "cache_clear", lambda: None)()
        if self._authorities is not None:
            self._authorities.clear()
            self._verdicts.clear()

    # ------------------------------------------------------------------ internals

    def _active(self, at: dt.datetime | None) -> tuple[str, ...]:
        if not self._schedules:
            return ()
        if at is None:
            ts = time.time()
        elif at.tzinfo is None:  # a naive time is read as wall-clock time in the policy's zone
            ts = at.replace(tzinfo=self.timezone).timestamp()
        else:
            ts = at.timestamp()
        second = int(ts)  # whole seconds (positive times: int() is floor)
        memo = self._schedule_memo
        if memo[0] == second and self._schedules_by_second:
            return memo[1]
        active = active_schedules(self._schedules, dt.datetime.fromtimestamp(ts, self.timezone))
        self._schedule_memo = (second, active)
        return active

    def _host_facts_uncached(self, host: str) -> tuple[_Dest, tuple[str, ...]]:
        hits, url_hosts = self._index.lookup_host(host)
        # Tuples, not lists: the cyclic GC untracks tuples of strings, so cached facts cost it nothing.
        return (self._merge(_NO_DEST, hits) if hits else _NO_DEST), tuple(url_hosts)

    def _facts_of_set(self, sid: int) -> _Dest:
        """What one list-set means in this policy: (categories sorted, as a set, rule positions, and
        (category, source) pairs for Match); computed once per list-set."""
        facts = self._set_facts.get(sid)
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
            facts = self._set_facts[sid] = (names, names, tuple(sorted(rules)), tuple(pairs))
        return facts

    def _merge(self, dest: _Dest, hits: list[tuple[str, int]]) -> _Dest:
        if not hits:
            return dest
        if len(hits) == 1 and dest is _NO_DEST:  # the usual hit: one listed suffix, nothing to combine
            entry, sid = hits[0]
            names, cats, rules, pairs = self._facts_of_set(sid)
            return names, cats, rules, tuple([(cat, source, entry) for cat, source in pairs])
        all_cats = set(dest[1])
        all_rules = set(dest[2])
        matched = list(dest[3])
        for entry, sid in hits:
            _, cats, rules, pairs = self._facts_of_set(sid)
            all_cats.update(cats)
            all_rules.update(rules)
            matched.extend([(cat, source, entry) for cat, source in pairs])
        names = tuple(sorted(all_cats))
        return names, names, tuple(sorted(all_rules)), tuple(matched)

    def _evaluate(self, dest: _Dest, group: str, schedules: tuple[str, ...], url_text: str) -> tuple:
        categories, cats, rule_hits, matched = dest
        for rule in self._rules:
            if rule.groups is not None and group not in rule.groups:
                continue
            if rule.when is not None and rule.when.isdisjoint(schedules):
                continue
            if (rule.any_destination or not rule.categories.isdisjoint(cats) or rule.position in rule_hits
                    or any(rx.search(url_text) for rx in rule.regex)):
                return (rule.action, rule.name, rule.tier, categories, matched)
        return (self.default, None, "default", categories, matched)


def compile_policy(doc: Document, cache_dir: Path | None = None, *, cache_size: int = DEFAULT_CACHE_SIZE) -> Policy:
    """Compile a validated Document; raises PolicyError (e.g. a missing list file, with the include's position)."""
    started = time.perf_counter()
    try:
        ZoneInfo(doc.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyError([Problem("<policy>", 0, 0, f"unknown time zone {doc.timezone!r}")]) from None
    refs, list_categories, problems = plan_lists(doc)
    if problems:
        raise PolicyError(problems)
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
    return Policy(doc, index, list_categories, version, stats, warnings, cache_size)


def _version(doc: Document, lists_digest: str) -> str:
    h = xxhash.xxh3_128(lists_digest.encode())
    for path in doc.files:
        try:
            h.update(b"\0" + Path(path).read_bytes())
        except OSError:
            h.update(b"\0<unreadable>" + str(path).encode())
    return h.hexdigest()[:16]
