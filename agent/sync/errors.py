"""Why a sync failed: one table of reasons, each with what it means for the operator and how it is counted.

A reason is status text (`classgate status`) and, through `METRIC_REASON`, one of the bounded reasons of
the metrics (classgate.metrics.sync, which the alert rules and dashboards name). Whether a failure is a
refusal of content the Department's server offered (as opposed to not reaching it) is said here too, once:
those are also counted as rejected bundles.
"""

from __future__ import annotations

from typing import Final, Literal, NamedTuple, get_args

from classgate.metrics.sync import REASONS as METRIC_REASONS
from classgate.metrics.sync import REJECT_REASONS as METRIC_REJECT_REASONS

Reason = Literal[
    "network", "timeout", "http_error", "oversized", "truncated", "bad_metadata", "bad_signature", "rollback",
    "expired", "bad_hash", "bad_bundle", "invalid_policy", "install", "activate", "internal",
]
REASONS: Final[tuple[Reason, ...]] = get_args(Reason)


class ReasonInfo(NamedTuple):
    metric: str  # the bounded metric reason (classgate.metrics.sync.REASONS)
    refused: bool  # the server offered content and we refused it (counted as a rejected bundle too)
    meaning: str  # what the operator should look at


REASON_INFO: Final[dict[Reason, ReasonInfo]] = {
    "network": ReasonInfo("network", False, "connection refused, DNS, TLS: the Department or the path to it is down"),
    "timeout": ReasonInfo("network", False, "connect/read timeout, or a download slower than its deadline"),
    "http_error": ReasonInfo("http_status", False, "the server answered 4xx/5xx (a 404 of a file the timestamp "
                                                   "points to...)"),
    "oversized": ReasonInfo("too_large", True, "more bytes than the cap for that file (endless data)"),
    "truncated": ReasonInfo("network", False, "the connection closed before the announced length"),
    "bad_metadata": ReasonInfo("verify", True, "not TUF metadata at all (garbage, an HTML error page)"),
    "bad_signature": ReasonInfo("verify", True, "not signed by the threshold of trusted keys (tampered, unknown "
                                                "key)"),
    "rollback": ReasonInfo("rollback", True, "an older version than one already trusted (replay)"),
    "expired": ReasonInfo("expired", True, "metadata past its expiry (freeze)"),
    "bad_hash": ReasonInfo("verify", True, "a target whose length or hash is not what the signed metadata says"),
    "bad_bundle": ReasonInfo("verify", True, "the manifest is missing or malformed, or lists a file the metadata "
                                             "does not sign"),
    "invalid_policy": ReasonInfo("invalid_policy", True, "the bundle verifies but its policy does not validate "
                                                         "(with the school overlay)"),
    "install": ReasonInfo("storage", False, "writing the bundle to disk failed (disk full, permissions)"),
    "activate": ReasonInfo("invalid_policy", True, "the proxy refused to load the installed policy"),
    "internal": ReasonInfo("internal", False, "a bug: anything else"),
}
METRIC_REASON: Final[dict[Reason, str]] = {reason: info.metric for reason, info in REASON_INFO.items()}
REFUSED: Final[frozenset[Reason]] = frozenset(r for r, info in REASON_INFO.items() if info.refused)
# A bundle whose policy does not load: the status names the version that was refused.
POLICY_REFUSED: Final[frozenset[Reason]] = frozenset({"invalid_policy", "activate"})


def _check_table() -> None:
    """Fail at import, not as a silent "other" label, when the table and the metrics' reasons disagree."""
    if set(REASON_INFO) != set(REASONS):
        raise RuntimeError(f"sync reasons without a table entry: {set(REASONS) ^ set(REASON_INFO)}")
    unknown = {info.metric for info in REASON_INFO.values()} - set(METRIC_REASONS)
    if unknown:
        raise RuntimeError(f"sync reasons map to metric reasons that metrics.sync does not have: {unknown}")
    refused = {METRIC_REASON[r] for r in REFUSED}
    if refused != set(METRIC_REJECT_REASONS):
        raise RuntimeError(f"rejected-bundle reasons disagree: ours {sorted(refused)}, "
                           f"metrics.sync {sorted(METRIC_REJECT_REASONS)}")


_check_table()


class SyncError(Exception):
    """A sync attempt that failed; `reason` says why in one word, `str()` says the details."""

    def __init__(self, reason: Reason, message: str):
        self.reason: Reason = reason if reason in REASON_INFO else "internal"
        super().__init__(message)


class NoBundleError(SyncError):
    """Nothing installed yet (a fresh gateway before its first successful sync)."""

    def __init__(self, message: str = "no verified bundle installed yet"):
        super().__init__("bad_bundle", message)
