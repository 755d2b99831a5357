"""The policy language's closed vocabularies, each defined once and imported wherever it is used.

Each is a `Literal` type (mypy rejects a misspelt value where one is expected) and the tuple of its values
derived from that type (for validation, JSON Schema, metric label sets and tests). The proxy hands the
tuples to `metrics` at start-up (classgate.proxy.metric_labels), so a label value and the value the engine
produces cannot drift apart.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

# "warn": a page says why and offers to continue; continuing opens the site on that device for a while
# (proxy/warn.py). Wherever no page can be shown (a passed-through or raw connection), warn is a block.
Action = Literal["allow", "block", "warn"]
ACTIONS: Final[tuple[Action, ...]] = get_args(Action)

# Which part of the policy decided: a locked Department rule, a school rule, a Department rule, the default,
# or nothing (the request could not be understood or the engine failed: always a block). "gateway": the
# gateway protecting itself before the policy is asked (a destination on the gateway, an unverified name).
# "teacher": a time-boxed class action (policies/class_actions.py), between the locked rules and the school's.
Tier = Literal["locked", "teacher", "school", "department", "default", "error", "gateway"]
TIERS: Final[tuple[Tier, ...]] = get_args(Tier)

# What a teacher can do to a group for a while (policies/class_actions.py): allow a site, block a site, lock the
# group to a list of sites, pause its Internet. Also the `kind` label of the active-actions gauge.
ClassActionKind = Literal["allow", "block", "lock", "pause"]
CLASS_ACTION_KINDS: Final[tuple[ClassActionKind, ...]] = get_args(ClassActionKind)

# Where a policy object was written: the Department's baseline or the school's overlay.
Origin = Literal["department", "school"]

SafeSearchEngine = Literal["google", "bing", "duckduckgo", "youtube"]
SAFE_SEARCH_ENGINES: Final[tuple[SafeSearchEngine, ...]] = get_args(SafeSearchEngine)

SafeSearchLevel = Literal["off", "moderate", "strict"]  # weakest first: a school may only move right
SAFE_SEARCH_LEVELS: Final[tuple[SafeSearchLevel, ...]] = get_args(SafeSearchLevel)

ListFormat = Literal["ut1", "domains", "hosts", "adblock"]
LIST_FORMATS: Final[tuple[ListFormat, ...]] = get_args(ListFormat)

# The languages the block page is written in; a policy may also say "auto" (the browser's Accept-Language).
PageLanguage = Literal["vi", "en"]
PAGE_LANGUAGES: Final[tuple[PageLanguage, ...]] = get_args(PageLanguage)
BlockPageLanguage = Literal["vi", "en", "auto"]
BLOCK_PAGE_LANGUAGES: Final[tuple[BlockPageLanguage, ...]] = get_args(BlockPageLanguage)

# The group of a client in no group's networks; a group name no policy may declare.
DEFAULT_GROUP: Final = "default"
# The category of a destination in no policy category (a decision's `category`, a metric label value).
UNCATEGORIZED: Final = "uncategorized"
