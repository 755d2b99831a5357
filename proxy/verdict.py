"""What a gate decided about one request or connection: one frozen value, recorded by every gate, counted once.

The gates (proxy/addons/tls_gate.py, tcp_gate.py, request_filter.py) decide; `Verdict` is what they record.
An HTTP request's verdict travels on its flow (`record` / `verdict_of`) until the flow ends, because its
byte counts are only known then; a connection decided without any HTTP flow (passed through, refused at the
ClientHello, a raw TCP tunnel cut) is handed to the `VerdictSink` at once. One component,
proxy/addons/usage_metrics.py, is the sink and reads the flows: it is the only caller of the per-request
metrics, so no decision is counted twice or by two paths.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final, Literal, Protocol, get_args

from mitmproxy import flow as mflow

from classgate.policies import Decision
from classgate.policies.vocabulary import DEFAULT_GROUP, UNCATEGORIZED, Action, SafeSearchEngine, Tier
from classgate.proxy.request_syntax import MalformedPart

# How an HTTPS connection was handled at the TLS gate.
TlsMode = Literal["intercepted", "passthrough", "refused"]
TLS_MODES: Final[tuple[TlsMode, ...]] = get_args(TlsMode)

_METADATA_KEY: Final = "classgate"


@dataclass(frozen=True, slots=True)
class Verdict:
    """One decision as the proxy acted on it."""

    action: Action
    tier: Tier
    group: str
    category: str  # the first of `categories`, or "uncategorized": the metric label
    categories: tuple[str, ...] = ()
    rule: str | None = None
    host: str | None = None  # canonical; feeds the k-anonymous top sites only, never a label or a log line
    decision_seconds: float = 0.0
    ref: str | None = None  # the short id on the block page and in the log line, for blocked requests
    safesearch: SafeSearchEngine | None = None  # the engine whose safe mode was enforced on this request
    error: bool = False  # the filter failed (or could not understand the request) and blocked to be safe
    policy_version: str | None = None

    @property
    def blocked(self) -> bool:
        return self.action == "block"

    @classmethod
    def of(cls, decision: Decision, *, policy_version: str | None, seconds: float = 0.0,
           ref: str | None = None) -> Verdict:
        return cls(
            action=decision.action,
            tier=decision.tier,
            group=decision.group,
            category=decision.category,
            categories=decision.categories,
            rule=decision.rule,
            host=decision.host or None,
            decision_seconds=seconds,
            ref=ref,
            error=decision.error is not None,
            policy_version=policy_version,
        )

    @classmethod
    def failed(cls, *, ref: str, group: str = DEFAULT_GROUP, seconds: float = 0.0,
               policy_version: str | None = None) -> Verdict:
        """The filter itself failed: blocked, tier error (fail closed)."""
        return cls(action="block", tier="error", group=group, category=UNCATEGORIZED, decision_seconds=seconds,
                   ref=ref, error=True, policy_version=policy_version)

    def failing(self, ref: str) -> Verdict:
        """This verdict turned into a block by a failure in a later step (e.g. the SafeSearch rewrite)."""
        return replace(self, action="block", tier="error", error=True, ref=ref)

    def with_safesearch(self, engine: SafeSearchEngine) -> Verdict:
        return replace(self, safesearch=engine)


def record(flow: mflow.Flow, verdict: Verdict) -> None:
    """Attach `verdict` to the flow (replacing an earlier one): the block page and the counter read it."""
    flow.metadata[_METADATA_KEY] = verdict


def verdict_of(flow: mflow.Flow) -> Verdict | None:
    verdict = flow.metadata.get(_METADATA_KEY)
    return verdict if isinstance(verdict, Verdict) else None


class VerdictSink(Protocol):
    """Where a gate hands what it decided without an HTTP flow to count (see usage_metrics.UsageMetrics)."""

    def connection_decided(self, verdict: Verdict | None, tls_mode: TlsMode | None) -> None:
        """`verdict` None: the gate failed before it had a decision; `tls_mode` None: not a TLS decision."""

    def malformed_request(self, part: MalformedPart) -> None:
        """A request refused with 400 before any decision (proxy/request_syntax.py)."""


class NoSink:
    """A gateway without metrics: decisions are acted on and not counted."""

    def connection_decided(self, verdict: Verdict | None, tls_mode: TlsMode | None) -> None:
        pass

    def malformed_request(self, part: MalformedPart) -> None:
        pass
