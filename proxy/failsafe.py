"""Fail closed, loudly once: an error while deciding blocks, is counted, and is logged once per cause.

mitmproxy logs and carries on when a hook raises (addonmanager.safecall), which for a filter means
the request goes through unfiltered. Every hook of ours therefore catches its own exceptions and
calls `FailSafe.failed`, then blocks.
"""

from __future__ import annotations

import logging
from typing import Final, Literal, Protocol, get_args

log = logging.getLogger(__name__)

# Where a fail-closed event happened: deciding a request, a CONNECT or a raw tunnel, a ClientHello, the
# SafeSearch rewrite, counting a finished flow (the decision was made; only its count is lost), or relaying a
# passthrough taken out of mitmproxy (proxy/addons/passthrough_splice.py: that connection is closed).
FailStage = Literal["request", "connect", "tls", "safesearch", "response", "relay"]
FAIL_STAGES: Final[tuple[FailStage, ...]] = get_args(FailStage)


class ErrorCounter(Protocol):
    def record_filter_error(self, stage: str) -> None: ...

MAX_CAUSES = 1000  # bound the memory a flood of distinct errors can take


class FailSafe:
    def __init__(self, metrics: ErrorCounter | None = None) -> None:
        self.metrics = metrics
        self._seen: set[tuple[str, str, str]] = set()
        self.count = 0

    def failed(self, stage: FailStage, error: BaseException, ref: str = "") -> None:
        """Record a fail-closed event at `stage` ("request", "tls", "connect", "response"...)."""
        self.count += 1
        if self.metrics is not None:
            try:
                self.metrics.record_filter_error(stage)
            except Exception:  # metrics must never turn a block into a crash
                log.debug("record_filter_error failed", exc_info=True)
        cause = (stage, type(error).__name__, str(error)[:200])
        if cause in self._seen:
            log.debug("filter error at %s (ref %s, seen before): %r", stage, ref, error)
            return
        if len(self._seen) < MAX_CAUSES:
            self._seen.add(cause)
        log.error(
            "filter error at %s stage (ref %s); blocking. Further errors with this cause are logged at DEBUG.",
            stage,
            ref or "-",
            exc_info=error,
        )
