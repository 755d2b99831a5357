"""The validated policy document: one typed tree, department baseline and school overlay merged.

`policies.document` builds it from YAML (and reports problems with positions); `policies.engine`
compiles it into the fast form that decides. Defaults live here, in the types.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, get_args

from classgate.policies.errors import Position, Problem
from classgate.policies.vocabulary import (
    DEFAULT_GROUP,
    Action,
    BlockPageLanguage,
    ListFormat,
    Origin,
    SafeSearchLevel,
    Tier,
)

__all__ = ["DEFAULT_GROUP", "Action", "BlockPageSettings", "Category", "Document", "Group", "IpNetwork",
           "ListFormat", "LocalService", "Origin", "QuotaSettings", "Rule", "RuleReason", "SafeSearchLevel", "SafeSearchSettings", "Schedule", "Source",
           "TeacherSettings", "Tier", "TimeWindow", "TlsSettings", "WarnSettings"]


@dataclass(frozen=True)
class Source:
    """A set of category lists on disk, e.g. the UT1 folder (`<category>/domains`, `<category>/urls`)."""

    name: str
    format: ListFormat
    path: Path  # absolute, resolved relative to the file that declared it
    url: str | None = None  # where the Department's `classgate lists fetch` gets it; gateways never fetch
    origin: Origin = "department"
    pos: Position | None = None


@dataclass(frozen=True)
class Category:
    """A policy category: lists included from sources plus inline domains and URLs."""

    name: str
    include: tuple[str, ...] = ()  # "source/list", e.g. "ut1/gambling"; a plain-file source is "name"
    domains: tuple[str, ...] = ()  # canonical hosts: the domain and all its subdomains
    urls: tuple[str, ...] = ()  # "host/path-prefix", UT1 `urls` semantics
    locked: bool = False  # a school cannot add to or remove from a locked category... nor loosen it
    origin: Origin = "department"
    pos: Position | None = None


IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Group:
    """A named set of client networks. Groups form a tree: a school group inside a Department group's
    networks (or naming it with `in:`) is its subgroup, and every rule or setting naming a group covers its
    subgroups; a school group inside no Department group is under the Department's `default`."""

    name: str
    networks: tuple[IpNetwork, ...] = ()
    origin: Origin = "department"
    parent: str | None = None  # the group this one is inside; None for a top-level group
    parent_given: bool = False  # `in:` was written (else the parent comes from the networks)
    pos: Position | None = None


@dataclass(frozen=True)
class TimeWindow:
    """Active when the local date/time is inside: days of week and/or a date range, and a time span."""

    days: frozenset[int] | None = None  # 0 = Monday ... 6 = Sunday; None = every day
    dates: tuple[dt.date, dt.date] | None = None  # inclusive range; None = any date
    start: dt.time = dt.time(0, 0)
    end: dt.time = dt.time(23, 59, 59, 999999)  # "24:00" is the end of the day
    pos: Position | None = None


@dataclass(frozen=True)
class Schedule:
    name: str
    windows: tuple[TimeWindow, ...]
    origin: Origin = "department"
    pos: Position | None = None


@dataclass(frozen=True)
class RuleReason:
    """Why a rule blocks, in the words a student reads on the block page (instead of the rule's name)."""

    vi: str = ""
    en: str = ""


# How long a device may use a quota rule's sites: minutes per period (only "day": reset at local midnight).
QuotaPeriod = Literal["day"]
QUOTA_PERIODS: Final[tuple[QuotaPeriod, ...]] = get_args(QuotaPeriod)
DEFAULT_WARN_MINUTES: Final = 10
MAX_WARN_MINUTES: Final = 480  # a school day: a continue never outlives it
MAX_QUOTA_MINUTES: Final = 1440


@dataclass(frozen=True)
class WarnSettings:
    """`action: warn`: after "continue", the site stays open on that device for `minutes`."""

    minutes: int = DEFAULT_WARN_MINUTES


@dataclass(frozen=True)
class QuotaSettings:
    """`quota:` on an allow or warn rule: each device may use the rule's sites `minutes` per `per`."""

    minutes: int
    per: QuotaPeriod = "day"


@dataclass(frozen=True)
class Rule:
    """An ordered rule; it matches when every condition given holds (no destination = any)."""

    name: str
    action: Action
    groups: tuple[str, ...] = ()  # any of; empty = every group
    when: tuple[str, ...] = ()  # schedule names, any of; empty = always
    categories: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()
    regex: tuple[str, ...] = ()  # on the full canonical URL
    locked: bool = False
    tier: Tier = "department"  # "locked" | "school" | "department"
    reason: RuleReason | None = None
    warn: WarnSettings | None = None  # set (defaults filled) exactly when action is "warn"
    quota: QuotaSettings | None = None
    pos: Position | None = None

    @property
    def has_destination(self) -> bool:
        return bool(self.categories or self.domains or self.urls or self.regex)


@dataclass(frozen=True)
class SafeSearchSettings:
    google: SafeSearchLevel = "off"
    bing: SafeSearchLevel = "off"
    duckduckgo: SafeSearchLevel = "off"
    youtube: SafeSearchLevel = "off"
    locked: bool = False
    pos: Position | None = None


# What the TLS gate does with a real Encrypted Client Hello (an ECH extension behind a known ECH front) from a
# group that is not inspected: refuse it (the default), or decide it on the outer name like any other SNI.
EchHandling = Literal["refuse", "allow"]
ECH_HANDLINGS: Final[tuple[EchHandling, ...]] = get_args(EchHandling)
# The shared outer names (ECHConfig `public_name`) behind which ECH hides the real destination: Cloudflare's,
# for every zone it serves with ECH, and those of the public ECH test sites (defo.ie, tls-ech.dev).
DEFAULT_ECH_FRONTS: Final = frozenset({"cloudflare-ech.com", "cover.defo.ie", "public.tls-ech.dev"})


@dataclass(frozen=True)
class TlsSettings:
    inspect_groups: frozenset[str] = frozenset()  # groups whose devices trust the school CA
    never_decrypt: frozenset[str] = frozenset()  # categories always passed through untouched
    ech: EchHandling = "refuse"
    ech_fronts: frozenset[str] = DEFAULT_ECH_FRONTS  # canonical host names; a policy adds to the defaults


# What the gateway's resolver answers for a name the client's group may not reach at all: the gateway's own
# address (plain HTTP then shows the block page) or NXDOMAIN.
DnsBlockAnswer = Literal["gateway", "nxdomain"]
DNS_BLOCK_ANSWERS: Final[tuple[DnsBlockAnswer, ...]] = get_args(DnsBlockAnswer)


@dataclass(frozen=True)
class DnsSettings:
    block_answer: DnsBlockAnswer = "gateway"


@dataclass(frozen=True)
class LocalService:
    """An address of the gateway itself (or a network of them) that devices may reach through the proxy.

    Every other destination on the gateway (loopback, its interface addresses, link-local, the
    unspecified address) is refused for every group before the policy is asked."""

    network: IpNetwork
    port: int | None = None  # None: every port
    pos: Position | None = None


@dataclass(frozen=True)
class BlockPageSettings:
    contact: str = ""
    language: BlockPageLanguage = "vi"


@dataclass(frozen=True)
class TeacherSettings:
    """The `teachers:` section (policies/teacher_settings.py): the longest a class action may last."""

    max_duration: dt.timedelta = dt.timedelta(hours=2)
    set_by_department: bool = False  # the Department wrote the cap: an overlay may only lower it


@dataclass(frozen=True)
class Document:
    """The merged, validated policy: what the engine compiles. Rules are in precedence order."""

    name: str
    timezone: str = "Asia/Ho_Chi_Minh"
    sources: dict[str, Source] = field(default_factory=dict)
    categories: dict[str, Category] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    schedules: dict[str, Schedule] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()  # locked department rules, then school rules, then other department rules
    default: Action = "allow"
    safe_search: SafeSearchSettings = SafeSearchSettings()
    tls: TlsSettings = TlsSettings()
    block_page: BlockPageSettings = BlockPageSettings()
    local_services: tuple[LocalService, ...] = ()
    dns: DnsSettings = DnsSettings()
    teachers: TeacherSettings = TeacherSettings()
    files: tuple[Path, ...] = ()  # the policy file and overlay, for digests and reload watching
    warnings: tuple[Problem, ...] = ()
