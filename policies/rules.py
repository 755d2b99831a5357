"""Rules: read in file order, references checked against the names the file may see, shadowing found."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from classgate.policies.destinations import read_domains, read_regex, read_urls
from classgate.policies.errors import Problem
from classgate.policies.model import (
    DEFAULT_GROUP,
    DEFAULT_WARN_MINUTES,
    MAX_QUOTA_MINUTES,
    MAX_WARN_MINUTES,
    QuotaSettings,
    Rule,
    RuleReason,
    Tier,
    WarnSettings,
)
from classgate.policies.yamlsource import Val


@dataclass(frozen=True)
class Names:
    """The names a rule may refer to (the Department's own, or after an overlay the merged ones)."""

    categories: Collection[str]
    groups: Collection[str]
    schedules: Collection[str]


def _unknown(kind: str, name: str, known: Collection[str]) -> str:
    near = difflib.get_close_matches(name, list(known), n=1)
    tip = f"; did you mean {near[0]!r}?" if near else f" (known: {', '.join(sorted(known)) or 'none'})"
    return f"unknown {kind} {name!r}{tip}"


def _names(node: Val | None, kind: str, known: Collection[str], owner: str, problems: list[Problem]) -> tuple[str, ...]:
    """Names used by a rule, each checked where it is written."""
    out: dict[str, None] = {}
    for item in node.value if node else ():
        name = item.value.strip()
        if name not in known:
            problems.append(Problem.at(item.pos, f"{owner}: {_unknown(kind, name, known)}"))
        out[name] = None
    return tuple(out)


def _reason(node: Val | None) -> RuleReason | None:
    if node is None:
        return None
    fields = node.value
    return RuleReason(vi=fields["vi"].value.strip() if "vi" in fields else "",
                      en=fields["en"].value.strip() if "en" in fields else "")


def _minutes(node: Val, most: int, owner: str, problems: list[Problem]) -> int | None:
    """A number of minutes from 1 to `most`, or None (reported where it is written)."""
    value = node.value
    if 1 <= value <= most:
        return int(value)
    problems.append(Problem.at(node.pos, f"{owner}: {value} minutes is out of range; write 1 to {most}"))
    return None


def _warn(fields: dict[str, Val], action: str, owner: str, problems: list[Problem]) -> WarnSettings | None:
    """`warn:` settings: filled with the defaults for every warn rule, refused on other actions."""
    node = fields.get("warn")
    if action != "warn":
        if node is not None:
            problems.append(Problem.at(node.pos, f"{owner}: `warn:` is for rules with `action: warn` (this "
                                                 f"one says {action}); remove it or write `action: warn`"))
        return None
    minutes_node = node.value.get("minutes") if node is not None else None
    if minutes_node is None:
        return WarnSettings()
    minutes = _minutes(minutes_node, MAX_WARN_MINUTES, owner, problems)
    return WarnSettings(minutes if minutes is not None else DEFAULT_WARN_MINUTES)


def _quota(fields: dict[str, Val], action: str, owner: str, problems: list[Problem]) -> QuotaSettings | None:
    node = fields.get("quota")
    if node is None or "minutes" not in node.value:
        return None  # none, or reported by the shape check
    if action == "block":
        problems.append(Problem.at(node.pos, f"{owner}: a quota is time a device may use sites, so it goes "
                                             "on an allow or warn rule, not a block rule"))
        return None
    minutes = _minutes(node.value["minutes"], MAX_QUOTA_MINUTES, owner, problems)
    if minutes is None:
        return None
    return QuotaSettings(minutes=minutes)  # `per` can only be "day" (the shape check refuses anything else)


def read_rules(node: Val | None, tier_unlocked: Tier, names: Names, problems: list[Problem]) -> list[Rule]:
    """Rules in file order; a rule with `locked: true` gets tier "locked", the others `tier_unlocked`.

    Every name used must be defined; clients in no group are in group "default".
    """
    groups = set(names.groups) | {DEFAULT_GROUP}
    rules: list[Rule] = []
    seen: dict[str, Rule] = {}
    for item in node.value if node else ():
        fields = item.value
        if "name" not in fields or "action" not in fields:
            continue  # reported by the shape check
        name = fields["name"].value
        owner = f"rule {name!r}"
        locked = bool(fields["locked"].value) if "locked" in fields else False
        action = fields["action"].value
        rule = Rule(
            name=name,
            action=action,
            groups=_names(fields.get("groups"), "group", groups, owner, problems),
            when=_names(fields.get("when"), "schedule", names.schedules, owner, problems),
            categories=_names(fields.get("categories"), "category", names.categories, owner, problems),
            domains=read_domains(fields.get("domains"), owner, problems),
            urls=read_urls(fields.get("urls"), owner, problems),
            regex=read_regex(fields.get("regex"), owner, problems),
            locked=locked,
            tier="locked" if locked else tier_unlocked,
            reason=_reason(fields.get("reason")),
            warn=_warn(fields, action, owner, problems),
            quota=_quota(fields, action, owner, problems),
            pos=fields["name"].pos,
        )
        if name in seen:
            first = seen[name].pos
            problems.append(Problem.at(rule.pos, f"duplicate rule name {name!r} (first at line "
                                                 f"{first.line if first else '?'})"))
            continue
        seen[name] = rule
        rules.append(rule)
    return rules


def _covers_domain(wide: Iterable[str], host: str) -> bool:
    return any(host == d or host.endswith("." + d) for d in wide)


def covers(first: Rule, later: Rule) -> bool:
    """True when every request `later` matches is also matched by `first` (so `later` never decides).

    Conservative: says True only when it can prove it; regexes and URL prefixes are compared literally.
    """
    if first.groups and not (later.groups and set(later.groups) <= set(first.groups)):
        return False
    if first.when and not (later.when and set(later.when) <= set(first.when)):
        return False
    if not first.has_destination:
        return True
    if not later.has_destination:
        return False
    return (set(later.categories) <= set(first.categories)
            and all(_covers_domain(first.domains, d) for d in later.domains)
            and all(u in first.urls or _covers_domain(first.domains, u.partition("/")[0]) for u in later.urls)
            and set(later.regex) <= set(first.regex))


def shadow_warnings(locked: list[Rule], others: list[Rule]) -> list[Problem]:
    """A rule below a locked rule that always matches first can never take effect: say so."""
    warnings = []
    for rule in others:
        for lock in locked:
            if covers(lock, rule):
                warnings.append(Problem.at(rule.pos, f"rule {rule.name!r} can never take effect: the "
                                                     f"Department's locked rule {lock.name!r} always matches "
                                                     "first", severity="warning"))
                break
    return warnings


def order_warnings(department_rules: list[Rule]) -> list[Problem]:
    """Locked rules always come first; an unlocked rule written above one is silently moved below it."""
    warnings = []
    first_unlocked: Rule | None = None
    for rule in department_rules:
        if not rule.locked and first_unlocked is None:
            first_unlocked = rule
        elif rule.locked and first_unlocked is not None:
            warnings.append(Problem.at(rule.pos, f"locked rule {rule.name!r} is written after rule "
                                                 f"{first_unlocked.name!r} but locked rules always come first; "
                                                 "move it up so the file reads in the order rules apply",
                                       severity="warning"))
    return warnings
