"""The bridge to metrics: counts each finished flow from flow.metadata["classgate"].

The filter knows nothing of Prometheus and metrics knows nothing of mitmproxy; this addon reads the
decision the filter recorded and calls `metrics.Metrics` with plain strings.
"""

from __future__ import annotations

import logging
from typing import Any

from mitmproxy import http

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
    def __init__(self, metrics: Any) -> None:
        self.metrics = metrics

    def response(self, flow: http.HTTPFlow) -> None:
        self._count(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._count(flow)

    def _count(self, flow: http.HTTPFlow) -> None:
        meta = flow.metadata.get("classgate")
        if meta is None or meta.get("counted"):
            return
        meta["counted"] = True  # response then error on the same flow must not count twice
        m = self.metrics
        try:
            category = meta.get("category") or "uncategorized"
            m.record_request(
                category,
                meta.get("group") or "default",
                meta.get("action") or "block",
                meta.get("tier") or "error",
                _size(flow.request),
                _size(flow.response),
            )
            m.observe_decision(meta.get("decision_seconds") or 0.0)
            if meta.get("safesearch"):
                m.record_safesearch(meta["safesearch"])
            if meta.get("host"):
                # The client address only feeds top-sites' in-memory distinct-client threshold
                # (a keyed hash, never exported); it is not a label and is not logged.
                peer = flow.client_conn.peername
                m.topsites.observe(category, meta["host"], client=peer[0] if peer else None)
        except Exception:
            # Counting must never break a flow; the gap shows up as missing counts, not outages.
            log.debug("metrics recording failed", exc_info=True)
