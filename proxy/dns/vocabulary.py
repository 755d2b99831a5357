"""The closed sets the gateway's resolver counts by, each defined once (metric labels come from here)."""

from __future__ import annotations

from typing import Final, Literal, get_args

# Answers the resolver gives by its own rule rather than the upstream's: Firefox's canary domain (NXDOMAIN),
# iCloud Private Relay's names (NXDOMAIN), a built-in encrypted-DNS resolver name (the block answer), and a
# search engine's safe host for groups that are not inspected (a CNAME).
SpecialAnswer = Literal["canary", "private_relay", "encrypted_dns", "safesearch"]
SPECIAL_ANSWERS: Final[tuple[SpecialAnswer, ...]] = get_args(SpecialAnswer)

# The record types an `ech` parameter is stripped from.
StrippedType = Literal["https", "svcb"]
STRIPPED_TYPES: Final[tuple[StrippedType, ...]] = get_args(StrippedType)

# Why a query got no ordinary answer: unreadable (FORMERR), not served (another opcode or class, a zone
# transfer: NOTIMP/REFUSED), from outside the LAN (REFUSED), over its client's rate or the listener's capacity
# (dropped), no upstream answered (SERVFAIL), or the gateway failed (SERVFAIL, fail closed).
DnsFailure = Literal["malformed", "unsupported", "not_lan", "rate_limited", "overloaded", "upstream_failed", "error"]
DNS_FAILURES: Final[tuple[DnsFailure, ...]] = get_args(DnsFailure)

CacheResult = Literal["hit", "miss"]
CACHE_RESULTS: Final[tuple[CacheResult, ...]] = get_args(CacheResult)
