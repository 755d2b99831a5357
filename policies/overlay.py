"""A school overlay on the Department policy: it may add and tighten, never loosen what is locked.

Precedence is fixed: the Department's locked rules, then the school's rules, then the Department's
other rules, then `default`. So a school can override the Department's unlocked rules by writing its own,
but nothing it writes runs before a locked rule.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from classgate.policies.categories import read_categories, read_sources
from classgate.policies.dns_settings import read_dns, read_ech
from classgate.policies.errors import Problem
from classgate.policies.groups import place_school_groups, read_groups
from classgate.policies.rules import Names, read_rules
from classgate.policies.schedules import read_schedules
from classgate.policies.settings import read_block_page, read_local_services, read_tls, tighten_safe_search
from classgate.policies.teacher_settings import read_teachers
from classgate.policies.yamlsource import Val

if TYPE_CHECKING:
    from classgate.policies.document import Draft


def _merge_sources(draft: Draft, node: Val | None, base: Path, problems: list[Problem], *,
                   require_files: bool = True) -> None:
    for name, source in read_sources(node, base, "school", problems, require_files=require_files).items():
        if name in draft.sources:
            problems.append(Problem.at(source.pos, f"source {name!r} is already defined by the Department; "
                                                   "choose another name"))
        else:
            draft.sources[name] = source


def _merge_categories(draft: Draft, node: Val | None, problems: list[Problem]) -> None:
    for name, cat in read_categories(node, draft.sources, "school", problems).items():
        if cat.locked:
            problems.append(Problem.at(cat.pos, f"category {name!r}: only the Department can lock a category"))
        ours = draft.categories.get(name)
        if ours is None:
            draft.categories[name] = replace(cat, locked=False)
        elif ours.locked:
            problems.append(Problem.at(cat.pos, f"category {name!r} is locked by the Department; a school "
                                                "cannot change it (define a new category instead)"))
        else:
            draft.categories[name] = replace(
                ours,
                include=tuple(dict.fromkeys(ours.include + cat.include)),
                domains=tuple(dict.fromkeys(ours.domains + cat.domains)),
                urls=tuple(dict.fromkeys(ours.urls + cat.urls)),
            )


def _merge_groups(draft: Draft, node: Val | None, problems: list[Problem]) -> None:
    # Assigning networks to a Department group is the point of an overlay: the Department names the
    # groups (students, teachers...), each school knows its own address plan.
    for name, group in read_groups(node, "school", problems).items():
        ours = draft.groups.get(name)
        if ours is None:
            draft.groups[name] = group
        else:
            if group.parent_given:
                problems.append(Problem.at(group.pos, f"group {name!r} is the Department's: `in:` places the "
                                                      "school's own groups, not the Department's"))
            draft.groups[name] = replace(ours, networks=tuple(dict.fromkeys(ours.networks + group.networks)))
    # Every school group under the Department group its networks lie in (or `default`): locks naming a
    # Department group then bind every client it covers, whatever groups the school carves out of it.
    place_school_groups(draft.groups, problems)
    for group in draft.groups.values():
        if group.origin == "department" and not group.networks:
            problems.append(Problem.at(group.pos, f"Department group {group.name!r} has no networks "
                                                          "after this overlay: no client is in it (assign the "
                                                          "school's addresses with `networks:`)", "warning"))


def _merge_schedules(draft: Draft, node: Val | None, problems: list[Problem]) -> None:
    for name, schedule in read_schedules(node, "school", problems).items():
        if name in draft.schedules:
            problems.append(Problem.at(schedule.pos, f"schedule {name!r} is defined by the Department; a "
                                                     "school cannot redefine it (add a schedule with another name)"))
        else:
            draft.schedules[name] = schedule


def _school_rules(draft: Draft, node: Val | None, problems: list[Problem]) -> None:
    ours = {r.name: r for r in draft.department_rules}
    names = Names(draft.categories, draft.groups, draft.schedules)
    for rule in read_rules(node, "school", names, problems):
        if rule.locked:
            problems.append(Problem.at(rule.pos, f"rule {rule.name!r}: only the Department can lock a rule"))
            rule = replace(rule, locked=False, tier="school")
        theirs = ours.get(rule.name)
        if theirs is not None:
            what = ("is locked by the Department; an overlay cannot redefine it" if theirs.locked else
                    "is already a Department rule; give the school's rule another name (school rules "
                    "come before the Department's unlocked rules anyway)")
            problems.append(Problem.at(rule.pos, f"rule {rule.name!r} {what}"))
            continue
        draft.school_rules.append(rule)


def apply(draft: Draft, top: Val, base: Path, problems: list[Problem], *, require_files: bool = True) -> None:
    """Merge the overlay (shape-checked top-level Val) into the Department draft, in place."""
    s = top.value
    # Order matters: categories may include the school's own sources; rules refer to everything.
    _merge_sources(draft, s.get("sources"), base, problems, require_files=require_files)
    _merge_categories(draft, s.get("categories"), problems)
    _merge_groups(draft, s.get("groups"), problems)
    _merge_schedules(draft, s.get("schedules"), problems)
    _school_rules(draft, s.get("rules"), problems)
    if "safe_search" in s:
        draft.safe_search = tighten_safe_search(draft.safe_search, s["safe_search"], problems)
    if "default" in s:
        draft.default = s["default"].value
    draft.tls = read_ech(s.get("tls"), read_tls(s.get("tls"), draft.tls), draft.tls, problems, overlay=True)
    draft.dns = read_dns(s.get("dns"), draft.dns)
    draft.block_page = read_block_page(s.get("block_page"), draft.block_page)
    draft.teachers = read_teachers(s.get("teachers"), problems, draft.teachers, overlay=True)
    # The school's own box: a school may open its own services on it (a printer portal, a console).
    draft.local_services = read_local_services(s.get("local_services"), problems, draft.local_services)
