"""The policy format's keys and shapes: the single description the validator and schema.json share.

Extend, never rename: these keys are a contract with admins' files and with tests outside the project.
"""

from __future__ import annotations

from classgate.policies.model import (
    DEFAULT_WARN_MINUTES,
    DNS_BLOCK_ANSWERS,
    ECH_HANDLINGS,
    MAX_QUOTA_MINUTES,
    MAX_WARN_MINUTES,
    QUOTA_PERIODS,
)
from classgate.policies.shapes import Bool, Enum, Int, ListOf, MapOf, Obj, Spec, Str
from classgate.policies.vocabulary import (
    ACTIONS,
    BLOCK_PAGE_LANGUAGES,
    LIST_FORMATS,
    SAFE_SEARCH_ENGINES,
    SAFE_SEARCH_LEVELS,
)

VERSION = 1
SOURCE_URL_PATTERN = r"https?://[^\s/?#]+[^\s]*"


def _names(what: str) -> ListOf:
    return ListOf(Str(), description=f"names of {what}")


SOURCE = Obj(
    what="in a source",
    required=("format", "path"),
    fields={
        "format": Enum(LIST_FORMATS, description="ut1: a folder of <list>/domains and <list>/urls; domains: one "
                                                 "domain per line; hosts: /etc/hosts lines; adblock: ||domain^ rules"),
        "path": Str(description="folder (ut1) or file, relative to the policy file"),
        "url": Str(pattern=SOURCE_URL_PATTERN, hint="; a source url starts with https:// (or http://)",
                   description="Department only: where `classgate lists fetch` downloads this list (for ut1: the "
                               "folder of <list>.tar.gz archives); gateways never fetch, they get lists in the "
                               "signed bundle"),
    },
)

CATEGORY = Obj(
    what="in a category",
    fields={
        "include": ListOf(Str(), description="lists from sources: 'source/list' for ut1 sources, 'source' for "
                                             "single-file sources"),
        "domains": ListOf(Str(), description="domains; each also covers its subdomains"),
        "urls": ListOf(Str(), description="host/path prefixes (UT1 urls semantics)"),
        "locked": Bool(description="Department only: a school overlay cannot add to this category"),
    },
)

GROUP = Obj(
    what="in a group",
    fields={
        "networks": ListOf(Str(), description="client networks (CIDR); the most specific network wins"),
        "in": Str(description="school overlay: the Department group this group is part of (rules and locks "
                              "naming that group cover this one); without it, the Department group whose "
                              "networks hold this group's"),
    },
)

WINDOW = Obj(
    what="in a schedule window",
    fields={
        "days": ListOf(Str(), scalar_ok=True, description="mon-fri, sat,sun, daily, or a list like [mon, wed]"),
        "dates": Str(description="YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD (inclusive)"),
        "from": Str(pattern=r"\d{1,2}:\d{2}", hint='; write a time as "HH:MM"', description="HH:MM, local time"),
        "to": Str(pattern=r"\d{1,2}:\d{2}", hint='; write a time as "HH:MM"',
                  description="HH:MM (exclusive), or 24:00 for the end of the day"),
    },
)

RULE = Obj(
    what="in a rule",
    required=("name", "action"),
    fields={
        "name": Str(pattern=r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}", hint=" (a rule name: letters, digits, _ . : -)",
                    description="unique rule name, shown on the block page and in `classgate check`"),
        "action": Enum(ACTIONS, description="allow, block, or warn (a page that says why and offers to continue)"),
        "groups": _names("groups (any of); none = every client"),
        "when": ListOf(Str(), scalar_ok=True, description="a schedule name or a list (any of); none = always"),
        "categories": _names("categories (any of)"),
        "domains": ListOf(Str(), description="domains (with subdomains)"),
        "urls": ListOf(Str(), description="host/path prefixes"),
        "regex": ListOf(Str(), description="regular expressions searched in the full canonical URL"),
        "locked": Bool(description="Department only: this rule comes before every school rule"),
        "reason": Obj(what="in a rule's reason", fields={
            "vi": Str(description="why, in Vietnamese: shown on the block page instead of the rule's name"),
            "en": Str(description="why, in English"),
        }, description="why this rule blocks, in the words a student reads on the block page"),
        "warn": Obj(what="in a rule's warn", fields={
            "minutes": Int(description=f"how long a site stays open on a device after \"continue\" (1 to "
                                       f"{MAX_WARN_MINUTES}; default {DEFAULT_WARN_MINUTES})"),
        }, description="action: warn only: how long \"continue\" lasts"),
        "quota": Obj(what="in a rule's quota", required=("minutes",), fields={
            "minutes": Int(description=f"minutes each device may use this rule's sites per period (1 to "
                                       f"{MAX_QUOTA_MINUTES}); a minute counts when the device makes a request "
                                       "in it"),
            "per": Enum(QUOTA_PERIODS, description="day (the default): the quota resets at local midnight"),
        }, description="allow and warn rules: a daily time budget per device; used up, the rule blocks"),
    },
)


def _safe_search(locked_ok: bool) -> Obj:
    fields: dict[str, Spec] = {e: Enum(SAFE_SEARCH_LEVELS) for e in SAFE_SEARCH_ENGINES}
    if locked_ok:
        fields["locked"] = Bool(description="a school overlay cannot lower these levels")
    return Obj(what="in safe_search", fields=fields)


TLS = Obj(
    what="in tls",
    fields={
        "inspect_groups": _names("groups whose devices trust the school CA (HTTPS is inspected)"),
        "never_decrypt": _names("categories always passed through without decryption"),
        "ech": Enum(ECH_HANDLINGS, description="Encrypted Client Hello behind an ECH front, from a group that is not "
                                               "inspected: refuse (default) or allow (decided on the outer name); "
                                               "inspected groups are always intercepted"),
        "ech_fronts": ListOf(Str(), description="more shared ECH outer names (public_name), beside the built-in "
                                                "cloudflare-ech.com, cover.defo.ie, public.tls-ech.dev"),
    },
)

DNS = Obj(
    what="in dns",
    fields={
        "block_answer": Enum(DNS_BLOCK_ANSWERS, description="what the gateway's resolver answers for a name the "
                                                            "client's group may not reach: gateway (its own "
                                                            "address, default) or nxdomain"),
    },
)

BLOCK_PAGE = Obj(
    what="in block_page",
    fields={"contact": Str(description="who to ask (shown on the block page)"), "language": Enum(BLOCK_PAGE_LANGUAGES)},
)

TEACHERS = Obj(
    what="in teachers",
    fields={
        "max_duration": Str(pattern=r"(?:\d+h)?(?:\d+m)?", hint="; write a duration such as 45m, 2h or 1h30m",
                            description="the longest a teacher's class action may last (default 2h); a school "
                                        "may lower the Department's cap, not raise it"),
    },
    description="teachers' time-boxed class actions (classgate class ...; docs/teachers.md)",
)

_COMMON: dict[str, Spec] = {
    "classgate": Int(const=VERSION, description="format version; always 1"),
    "sources": MapOf(SOURCE, what="source name"),
    "categories": MapOf(CATEGORY, what="category name"),
    "groups": MapOf(GROUP, what="group name"),
    "schedules": MapOf(ListOf(WINDOW), what="schedule name"),
    "rules": ListOf(RULE, description="first match wins"),
    "default": Enum(("allow", "block"), description="the action when no rule matches"),
    "tls": TLS,
    "dns": DNS,
    "block_page": BLOCK_PAGE,
    "teachers": TEACHERS,
    "local_services": ListOf(Str(), description="addresses of the gateway itself that devices may reach through "
                             "the proxy (every other one is refused): IP, IP:PORT, [IPv6]:PORT or a network "
                             "such as 10.10.0.1/32"),
}

DEPARTMENT = Obj(
    what="at the top level",
    required=("classgate", "name"),
    description="classgate policy (Department baseline)",
    fields={
        "classgate": _COMMON["classgate"],
        "name": Str(description="policy name"),
        "overlay": Bool(description="false (or absent) for a Department policy"),
        "timezone": Str(description="IANA time zone of schedules, e.g. Asia/Ho_Chi_Minh"),
        **{k: v for k, v in _COMMON.items() if k != "classgate"},
        "safe_search": _safe_search(locked_ok=True),
    },
)

OVERLAY = Obj(
    what="in a school overlay",
    required=("classgate", "overlay"),
    description="classgate school overlay (adds to and tightens the Department policy)",
    fields={
        "classgate": _COMMON["classgate"],
        "overlay": Bool(description="true: this file is a school overlay"),
        "name": Str(description="school name"),
        **{k: v for k, v in _COMMON.items() if k != "classgate"},
        "safe_search": _safe_search(locked_ok=False),
    },
)
