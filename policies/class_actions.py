"""Teachers' class actions: time-boxed allows, blocks, locks and pauses for a group, as a tier of the policy.

A class action sits between the Department's locked rules and the school's rules (tier "teacher"):

    locked rules  >  class actions  >  school rules  >  Department rules  >  default

So a locked rule always decides first, and an action that would loosen the Department's locks does nothing:
an `allow` (or a site of a `lock`) never lets through what a locked rule blocks, nor a blocked destination
in a locked category. The CLI and the console refuse such an action when it is made (`refusal`), and every
decision checks again (`ClassActions.apply`), so a later policy change cannot let one through.

Several actions on one group: the most restrictive wins (pause, then block, then lock, then allow): a
teacher's block is never undone by another's allow, and a lock means only its sites. An action naming a
group covers its subgroups, as a rule does (policies.groups). Pure: no clock, no files; the store
(classgate.proxy.class_store) keeps the actions, the proxy hands them in with the time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from classgate.policies.canonical import canonical_url
from classgate.policies.decision import Decision
from classgate.policies.errors import UrlError
from classgate.policies.vocabulary import CLASS_ACTION_KINDS, Action, ClassActionKind

if TYPE_CHECKING:
    from classgate.policies.engine import Policy

# Most restrictive first: the first action that says something about a destination decides.
_PRECEDENCE: Final[dict[ClassActionKind, int]] = {"pause": 0, "block": 1, "lock": 2, "allow": 3}
# Decisions no class action may change: a locked rule decided, or the gateway protected itself / failed.
_FINAL_TIERS: Final = frozenset({"locked", "error", "gateway"})


class ClassActionError(ValueError):
    """A class action that cannot be made as given: says what to change."""


@dataclass(frozen=True)
class ClassAction:
    """One teacher's action on one group, in force from `starts` until `until` (unix seconds)."""

    id: str
    kind: ClassActionKind
    group: str
    sites: tuple[str, ...]  # canonical hosts, each with its subdomains; empty for a pause
    starts: float
    until: float
    by: str  # the teacher's account name (or "admin" for the CLI without --by)

    def active_at(self, now: float) -> bool:
        return self.starts <= now < self.until

    def covers(self, host: str) -> bool:
        """Is `host` one of the sites (or under one)? A pause covers everything."""
        return self.kind == "pause" or any(host == s or host.endswith("." + s) for s in self.sites)

    @property
    def rule(self) -> str:
        """The name a decision made by this action carries (shown on the block page and by `check`)."""
        return f"teacher-{self.kind}:{self.id}"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "group": self.group, "sites": list(self.sites),
                "starts": self.starts, "until": self.until, "by": self.by}

    @classmethod
    def from_json(cls, data: Any) -> ClassAction:
        """Raises ClassActionError for a record that is not a class action (a hand-edited file)."""
        try:
            kind = data["kind"]
            if kind not in CLASS_ACTION_KINDS:
                raise ClassActionError(f"unknown kind {kind!r}")
            action = cls(id=str(data["id"]), kind=kind, group=str(data["group"]),
                         sites=tuple(str(s) for s in data["sites"]), starts=float(data["starts"]),
                         until=float(data["until"]), by=str(data["by"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ClassActionError(f"not a class action: {exc}") from None
        return action


def site_host(text: str) -> str:
    """The canonical host a teacher means by `text` (`example.com`, `https://www.example.com/page`)."""
    try:
        return canonical_url(text.strip()).host
    except UrlError as exc:
        raise ClassActionError(f"{text!r} is not a site: {exc}") from None


class ClassActions:
    """A set of class actions, as the proxy applies them; immutable (a new set replaces it)."""

    __slots__ = ("_actions", "_paths")

    def __init__(self, actions: Iterable[ClassAction] = ()) -> None:
        self._actions = tuple(sorted(actions, key=lambda a: (_PRECEDENCE[a.kind], a.starts, a.id)))
        # (policy version, group) -> the group and the groups it is in: asked per decision, a few dozen groups
        self._paths: dict[tuple[str, str], frozenset[str]] = {}

    def __iter__(self) -> Iterator[ClassAction]:
        return iter(self._actions)

    def __len__(self) -> int:
        return len(self._actions)

    def active(self, now: float) -> tuple[ClassAction, ...]:
        return tuple(a for a in self._actions if a.active_at(now))

    def deciding(self, policy: Policy, decision: Decision, now: float) -> ClassAction | None:
        """The action that decides `decision`'s request at `now` (None: the policy's decision stands)."""
        if not self._actions or decision.tier in _FINAL_TIERS or decision.error is not None:
            return None
        path: frozenset[str] | None = None
        host = decision.host
        for action in self._actions:
            if not action.active_at(now):
                continue
            if path is None:
                path = self._path(policy, decision.group)
            if action.group not in path:
                continue
            if action.kind in ("pause", "block"):
                if action.covers(host):
                    return action
            elif action.kind == "lock" and not action.covers(host):
                return action  # "only these sites now": everything else is blocked
            elif action.covers(host):  # an allow, or a site of a lock
                return None if loosens_lock(policy, decision) else action
        return None

    def _path(self, policy: Policy, group: str) -> frozenset[str]:
        key = (policy.version, group)
        path = self._paths.get(key)
        if path is None:
            if len(self._paths) > 4096:  # groups of a few policies at most; a bound all the same
                self._paths.clear()
            path = self._paths[key] = frozenset(policy.group_path(group))
        return path

    def apply(self, policy: Policy, decision: Decision, now: float) -> Decision:
        """`decision` as the class actions in force at `now` change it (most often: unchanged)."""
        if not self._actions:
            return decision
        return self.explain(policy, decision, now)[0]

    def explain(self, policy: Policy, decision: Decision, now: float) -> tuple[Decision, ClassAction | None]:
        """The decision with the class actions applied, and the action that made it (None: the policy's)."""
        action = self.deciding(policy, decision, now)
        if action is None:
            return decision, None
        verdict: Action = "allow" if action.kind in ("allow", "lock") and action.covers(decision.host) else "block"
        return decision._replace(action=verdict, rule=action.rule, tier="teacher"), action


def locked_category(policy: Policy, decision: Decision) -> str | None:
    """The first of the destination's categories the Department locked, or None."""
    categories = policy.document.categories
    return next((c for c in decision.categories if c in categories and categories[c].locked), None)


def loosens_lock(policy: Policy, decision: Decision) -> bool:
    """Would allowing `decision`'s destination undo the Department's locks? (a locked rule blocks it, or a
    rule blocks it and it is in a locked category)"""
    if decision.action != "block":
        return False
    return decision.tier == "locked" or locked_category(policy, decision) is not None


def refusal(policy: Policy, kind: ClassActionKind, group: str, sites: Iterable[str],
            at: dt.datetime | None = None) -> str | None:
    """Why the policy does not let a teacher make this action now (None: it may), in words for the teacher."""
    if group not in policy.groups:
        return f"the policy has no group {group!r} (groups: {', '.join(policy.groups)})"
    if kind not in ("allow", "lock"):
        return None  # blocking more never loosens a lock
    for site in sites:
        decision = policy.decide_host(site, at=at, group=group)
        if decision.action != "block":
            continue
        if decision.tier == "locked":
            return (f"{site} stays blocked for group {group!r}: the Department's locked rule {decision.rule!r} "
                    "blocks it, and a teacher's action cannot loosen a locked rule")
        category = locked_category(policy, decision)
        if category is not None:
            return (f"{site} stays blocked for group {group!r}: it is in the Department's locked category "
                    f"{category!r} (blocked by {_by(decision)}), and a teacher's action "
                    "cannot loosen a locked category")
    return None


def _by(decision: Decision) -> str:
    return f"rule {decision.rule!r}" if decision.rule else "the default"
