"""What a decision says: the action, the rule and tier that made it, and why (the category hits)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from classgate.policies.vocabulary import UNCATEGORIZED, Action, Tier


class Match(NamedTuple):
    """One category hit: `entry` of list `source` put the destination in `category`."""

    category: str  # policy category name, e.g. "gambling"
    source: str  # the list, e.g. "ut1/gambling"; "inline" for a category's own domains/urls
    entry: str  # the list entry that matched, e.g. "example-casino.com" or "example.com/games"


class _DecisionFields(NamedTuple):
    action: Action
    rule: str | None  # rule name; None for the default (or an error)
    tier: Tier
    group: str
    categories: tuple[str, ...]  # sorted policy category names of the destination
    schedules: tuple[str, ...]  # schedules active at the decision time
    matched: tuple[Match, ...]  # stored as plain (category, source, entry) tuples; see Decision.matched
    host: str  # canonical host ("" when the URL could not be understood)
    url: str  # canonical URL ("" when it could not be understood; the host only for decide_host)
    error: str | None = None  # why the URL could not be understood / what failed; then action is "block"
    needs_path: bool = False  # decide_host only: a rule looking at the path could change this decision


class Decision(_DecisionFields):
    """The answer for one request. A tuple: one is built per request, so it must be cheap to make.

    The engine keeps the category hits as plain tuples (equal to the Match tuples, field by field): the
    cyclic GC untracks plain tuples of strings but never a tuple subclass, so Match objects held in the
    engine's caches would be re-walked by every full collection. `matched` gives them as Match objects."""

    __slots__ = ()

    @property
    def matched(self) -> tuple[Match, ...]:
        return tuple(map(Match._make, self[6]))  # indexing reads the stored tuples, past this property

    @property
    def blocked(self) -> bool:
        return self.action == "block"

    @property
    def allowed(self) -> bool:
        """Allowed outright. A "warn" is not: where no page can be shown (a passed-through or raw
        connection), a gate treats it as a block."""
        return self.action == "allow"

    @property
    def category(self) -> str:
        """The first of `categories` (the one counted and shown first), or "uncategorized"."""
        categories = self.categories
        return categories[0] if categories else UNCATEGORIZED


_new_tuple = tuple.__new__


def make_decision(*, action: Action, rule: str | None, tier: Tier, group: str, categories: tuple[str, ...],
                  schedules: tuple[str, ...], matched: tuple[tuple[str, str, str], ...], host: str, url: str,
                  error: str | None = None, needs_path: bool = False) -> Decision:
    """A Decision, by field name: the one way the engine builds one (`matched` as plain tuples, see Decision).

    Called once per request, so it fills the tuple directly (tuple.__new__) rather than through the
    Python-level __new__ that `Decision(...)` runs."""
    return _new_tuple(Decision, (action, rule, tier, group, categories, schedules, matched, host, url, error,
                                 needs_path))


def error_decision(message: str, group: str = "default", host: str = "", url: str = "") -> Decision:
    """Fail closed: a request we cannot judge is blocked, and says why."""
    return make_decision(action="block", rule=None, tier="error", group=group, categories=(), schedules=(),
                         matched=(), host=host, url=url, error=message)


@dataclass(frozen=True)
class PolicyStats:
    """Sizes and costs of a compiled policy (shown by `classgate policy validate`, exported as metrics)."""

    rules: int
    categories: int
    lists: int
    list_entries: int  # entries read from lists and inline, after per-list de-duplication
    index_keys: int  # distinct keys in the compiled index
    index_bytes: int  # size of the compiled index (file or memory)
    junk_lines: int  # list lines skipped as junk (see Policy.warnings)
    compile_seconds: float
    index_cached: bool  # True when the compiled index was loaded from cache_dir, not rebuilt

    @property
    def bytes_per_entry(self) -> float:
        return self.index_bytes / self.list_entries if self.list_entries else 0.0
