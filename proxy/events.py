"""Events counted outside the verdict sink: the gateway's resolver, Encrypted Client Hello at the TLS gate, and
connections refused for a device's limit.

Neither has an HTTP flow to record a verdict on, so the components call an `EventRecorder` directly with
plain strings from the closed sets in classgate.proxy.dns.vocabulary and classgate.proxy.verdict; the real one
is `classgate.metrics.Metrics` (which folds anything else into "other"), `NoEvents` counts nothing.
"""

from __future__ import annotations

from typing import Protocol

from classgate.proxy.dns.vocabulary import CacheResult, DnsFailure, SpecialAnswer, StrippedType
from classgate.proxy.verdict import TlsMode


class EventRecorder(Protocol):
    def record_dns_query(self, category: str, group: str, action: str) -> None:
        """One query answered by the policy's decision (`action` allow or block)."""

    def record_dns_special(self, kind: SpecialAnswer) -> None:
        """An answer by the resolver's own rule (canary, Private Relay, encrypted DNS, SafeSearch)."""

    def record_dns_ech_stripped(self, record_type: StrippedType, count: int) -> None:
        """`count` records of `record_type` lost their `ech` parameter (or were dropped for it)."""

    def record_dns_failure(self, reason: DnsFailure) -> None:
        """A query that got no ordinary answer."""

    def record_dns_cache(self, result: CacheResult) -> None:
        """An upstream lookup served from the cache, or not."""

    def record_tls_ech(self, mode: TlsMode) -> None:
        """A ClientHello with real ECH behind a known front, and how it was handled."""

    def record_device_limit(self) -> None:
        """A connection closed before reading from it: its device already had its limit open."""


class NoEvents:
    """A gateway without metrics."""

    def record_dns_query(self, category: str, group: str, action: str) -> None:
        pass

    def record_dns_special(self, kind: SpecialAnswer) -> None:
        pass

    def record_dns_ech_stripped(self, record_type: StrippedType, count: int) -> None:
        pass

    def record_dns_failure(self, reason: DnsFailure) -> None:
        pass

    def record_dns_cache(self, result: CacheResult) -> None:
        pass

    def record_tls_ech(self, mode: TlsMode) -> None:
        pass

    def record_device_limit(self) -> None:
        pass
