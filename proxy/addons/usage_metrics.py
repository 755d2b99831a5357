"""The one component that counts: every verdict, once, into `classgate.metrics`.

HTTP requests are counted when their flow ends (the byte counts are known then), from the verdict the
filter recorded on the flow; connections decided without an HTTP flow arrive through `connection_decided`
(this is the gates' VerdictSink). The filter knows nothing of Prometheus and metrics knows nothing of
mitmproxy: this reads the verdicts and calls `metrics.Metrics` with plain strings.
"""

from __future__ import annotations

import logging
import weakref

from mitmproxy import http

from classgate.metrics import Metrics
from classgate.proxy.request_syntax import MalformedPart
from classgate.proxy.verdict import TlsMode, Verdict, verdict_of

log = logging.getLogger(__name__)


def _size(message: http.Message | None) -> int:
    if message is None:
        return 0
    if message.raw_content is not None:
        return len(message.raw_content)
    try:  # streamed: the body went by without being kept
        return int(message.headers.get("content-length", 0))
    except ValueError:
        return 0


class UsageMetrics:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        # A flow can end with a response and then an error (a client gone mid-body): count it once.
        self._counted: weakref.WeakSet[http.HTTPFlow] = weakref.WeakSet()

    def response(self, flow: http.HTTPFlow) -> None:
        self._count_flow(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._count_flow(flow)

    def connection_decided(self, verdict: Verdict | None, tls_mode: TlsMode | None) -> None:
        try:
            if tls_mode is not None:
                self.metrics.record_tls(tls_mode)
            if verdict is not None:
                self._count(verdict, 0, 0)
        except Exception:
            log.debug("metrics recording failed", exc_info=True)

    def malformed_request(self, part: MalformedPart) -> None:
        try:
            self.metrics.record_malformed(part)
        except Exception:
            log.debug("metrics recording failed", exc_info=True)

    def _count_flow(self, flow: http.HTTPFlow) -> None:
        verdict = verdict_of(flow)
        if verdict is None or flow in self._counted:
            return
        self._counted.add(flow)
        try:
            self._count(verdict, _size(flow.request), _size(flow.response))
            self.metrics.observe_decision(verdict.decision_seconds)
            if verdict.safesearch is not None:
                self.metrics.record_safesearch(verdict.safesearch)
            if verdict.host:
                # The client address only feeds top-sites' in-memory distinct-client threshold
                # (a keyed hash, never exported); it is not a label and is not logged.
                peer = flow.client_conn.peername
                self.metrics.topsites.observe(verdict.category, verdict.host, client=peer[0] if peer else None)
        except Exception:
            # Counting must never break a flow; the gap shows up as missing counts, not outages.
            log.debug("metrics recording failed", exc_info=True)

    def _count(self, verdict: Verdict, sent: int, received: int) -> None:
        self.metrics.record_request(verdict.category, verdict.group, verdict.action, verdict.tier, sent, received)
