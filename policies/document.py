"""Read a Department policy (and optionally a school overlay) into one validated `Document`.

Every problem found is collected, with its position, before raising: an admin fixes them all in one
pass instead of one per run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from classgate.policies import overlay as overlay_mod
from classgate.policies.categories import read_categories, read_sources
from classgate.policies.dns_settings import read_dns, read_ech
from classgate.policies.errors import PolicyError, Position, Problem
from classgate.policies.groups import check_overlaps, read_groups
from classgate.policies.keys import DEPARTMENT, OVERLAY
from classgate.policies.model import (
    Action,
    BlockPageSettings,
    Category,
    DnsSettings,
    Document,
    Group,
    LocalService,
    Rule,
    SafeSearchSettings,
    Schedule,
    Source,
    TeacherSettings,
    TlsSettings,
)
from classgate.policies.rules import Names, order_warnings, read_rules, shadow_warnings
from classgate.policies.schedules import read_schedules
from classgate.policies.settings import (
    read_block_page,
    read_local_services,
    read_safe_search,
    read_tls,
    tls_positions,
)
from classgate.policies.teacher_settings import read_teachers
from classgate.policies.yamlsource import Val, compose, position, read_text

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"


@dataclass
class Draft:
    """The document while it is being assembled from the Department file and the overlay."""

    name: str
    timezone: str
    sources: dict[str, Source]
    categories: dict[str, Category]
    groups: dict[str, Group]
    schedules: dict[str, Schedule]
    department_rules: list[Rule]
    default: Action
    safe_search: SafeSearchSettings
    tls: TlsSettings
    block_page: BlockPageSettings
    local_services: tuple[LocalService, ...] = ()
    school_rules: list[Rule] = field(default_factory=list)
    dns: DnsSettings = field(default_factory=DnsSettings)
    teachers: TeacherSettings = field(default_factory=TeacherSettings)


def _is_overlay(node: yaml.Node) -> yaml.Node | None:
    """The `overlay: true` key node, if the document declares itself an overlay."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if (isinstance(key, yaml.ScalarNode) and key.value == "overlay" and isinstance(value, yaml.ScalarNode)
                    and value.tag == "tag:yaml.org,2002:bool" and value.value.lower() in ("true", "yes", "on")):
                return key
    return None


def load_top(path: Path, want_overlay: bool, problems: list[Problem]) -> Val | None:
    """The shape-checked top-level mapping of one file (None when it cannot be read or parsed at all)."""
    file = str(path)
    text = read_text(path, problems)
    if text is None:
        return None
    node = compose(text, file, problems)
    if node is None:
        return None
    overlay_key = _is_overlay(node)
    if overlay_key is not None and not want_overlay:
        problems.append(Problem.at(position(file, overlay_key), "this file is a school overlay "
                                   "(overlay: true): give it with --overlay next to the Department policy"))
        return None
    if want_overlay and overlay_key is None and isinstance(node, yaml.MappingNode):
        problems.append(Problem.at(position(file, node), "a school overlay must say `overlay: true` (a "
                                   "Department policy cannot be used as an overlay)"))
        return None
    top = (OVERLAY if want_overlay else DEPARTMENT).read(node, file, problems)
    if top is not None and not isinstance(top.value, dict):
        return None
    return top


def read_timezone(node: Val | None, problems: list[Problem]) -> str:
    if node is None:
        return DEFAULT_TIMEZONE
    name = node.value.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(Problem.at(node.pos, f"unknown time zone {name!r}; use an IANA name such as "
                                             f"{DEFAULT_TIMEZONE!r}"))
        return DEFAULT_TIMEZONE
    return str(name)


def check_tls(node: Val | None, draft: Draft, problems: list[Problem]) -> None:
    entries = tls_positions(node)
    for item in entries.get("inspect_groups", []):
        if item.value not in draft.groups and item.value != "default":
            problems.append(Problem.at(item.pos, f"tls: unknown group {item.value!r}"))
    for item in entries.get("never_decrypt", []):
        if item.value not in draft.categories:
            problems.append(Problem.at(item.pos, f"tls: unknown category {item.value!r}"))


def _keys(node: Val | None) -> set[str]:
    return set(node.value) if node else set()


def _sort_key(files: list[str]) -> Callable[[Problem], tuple[int, int, int]]:
    def key(p: Problem) -> tuple[int, int, int]:
        return (files.index(p.file) if p.file in files else len(files), p.line, p.col)
    return key


def read_department(top: Val, base: Path, problems: list[Problem], *, require_files: bool = True) -> Draft:
    d = top.value
    sources = read_sources(d.get("sources"), base, "department", problems, require_files=require_files)
    categories = read_categories(d.get("categories"), sources, "department", problems)
    groups = read_groups(d.get("groups"), "department", problems)
    schedules = read_schedules(d.get("schedules"), "department", problems)
    # Names from the raw sections: a category whose list failed to resolve still exists for the rules.
    names = Names(_keys(d.get("categories")), _keys(d.get("groups")), _keys(d.get("schedules")))
    draft = Draft(
        name=d["name"].value if "name" in d else "",
        timezone=read_timezone(d.get("timezone"), problems),
        sources=sources,
        categories=categories,
        groups=groups,
        schedules=schedules,
        department_rules=read_rules(d.get("rules"), "department", names, problems),
        default=d["default"].value if "default" in d else "allow",
        safe_search=read_safe_search(d.get("safe_search")),
        tls=read_ech(d.get("tls"), read_tls(d.get("tls")), TlsSettings(), problems),
        block_page=read_block_page(d.get("block_page")),
        local_services=read_local_services(d.get("local_services"), problems),
        dns=read_dns(d.get("dns")),
        teachers=read_teachers(d.get("teachers"), problems),
    )
    check_tls(d.get("tls"), draft, problems)
    for group in groups.values():
        if group.parent_given:
            problems.append(Problem.at(group.pos, f"group {group.name!r}: `in:` is for a school overlay's own "
                                                  "groups; the Department's groups are the top of the tree"))
    return draft


def read_document(path: str | Path, overlay: str | Path | None = None, *, base: Path | None = None,
                  overlay_base: Path | None = None, require_files: bool = True) -> Document:
    """The merged, validated policy; raises PolicyError listing every problem found.

    `base` / `overlay_base`: the folders relative `path:`s are read from, when not the files' own (a copy
    of a policy kept elsewhere, such as the last good one in the state dir). `require_files` False: the
    sources' list files need not exist (the policy is used with an index compiled from them earlier)."""
    problems: list[Problem] = []
    path = Path(path)
    overlay_path = Path(overlay) if overlay is not None else None
    top = load_top(path, False, problems)
    school_top = load_top(overlay_path, True, problems) if overlay_path is not None else None
    if top is None or (overlay_path is not None and school_top is None):
        raise PolicyError(problems or [Problem.at(Position(str(path), 1, 1), "the policy cannot be read")])
    draft = read_department(top, base or path.parent, problems, require_files=require_files)
    warnings = order_warnings(draft.department_rules)
    locked = [r for r in draft.department_rules if r.locked]
    if school_top is not None and overlay_path is not None:
        overlay_mod.apply(draft, school_top, overlay_base or overlay_path.parent, problems,
                          require_files=require_files)
        check_tls(school_top.value.get("tls"), draft, problems)
        warnings += shadow_warnings(locked, draft.school_rules)
    check_overlaps(draft.groups, problems)
    problems.extend(warnings)
    # In file order, so an admin reads them top to bottom as in the editor.
    problems.sort(key=_sort_key([str(path), str(overlay_path)]))
    if any(p.severity == "error" for p in problems):
        raise PolicyError(problems)
    files = (path.resolve(),) + ((overlay_path.resolve(),) if overlay_path is not None else ())
    return Document(
        name=draft.name,
        timezone=draft.timezone,
        sources=draft.sources,
        categories=draft.categories,
        groups=draft.groups,
        schedules=draft.schedules,
        rules=tuple(locked + draft.school_rules + [r for r in draft.department_rules if not r.locked]),
        default=draft.default,
        safe_search=draft.safe_search,
        tls=draft.tls,
        block_page=draft.block_page,
        local_services=draft.local_services,
        dns=draft.dns,
        teachers=draft.teachers,
        files=files,
        warnings=tuple(p for p in problems if p.severity == "warning"),
    )
