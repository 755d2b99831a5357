"""Aggregate usage metrics for Prometheus, and the top-sites summary; imports nothing of ours.

    m = metrics.Metrics()
    m.set_policy(version, loaded_at, categories, groups, source="file")
    m.record_request(category, group, action, tier, request_bytes, response_bytes)
    m.topsites.observe(category, host, client=None)
    server = metrics.server.start(m, "127.0.0.1", 9741)   # /metrics and /stats.json

See docs/metrics.md for every metric, and metrics/sync.py for the sync metrics (`m.sync`).
"""

from classgate.metrics import server
from classgate.metrics.registry import Metrics
from classgate.metrics.server import MetricsServer
from classgate.metrics.sync import SyncMetrics
from classgate.metrics.topsites import TopSites, registrable_domain

__all__ = ["Metrics", "MetricsServer", "SyncMetrics", "TopSites", "registrable_domain", "server"]
