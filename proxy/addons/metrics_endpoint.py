"""Serve /metrics and /stats.json while the proxy runs (option `classgate_metrics` = HOST:PORT)."""

from __future__ import annotations

import logging

from mitmproxy import ctx, exceptions
from mitmproxy.addonmanager import Loader

from classgate.metrics import Metrics, MetricsServer
from classgate.metrics import server as metrics_server
from classgate.proxy.address import parse_address

log = logging.getLogger(__name__)


class MetricsEndpoint:
    """`server`: one the gateway builder bound already (so `classgate run` fails before it starts, with a
    clear message, when the port is taken); this addon then only closes it at the end."""

    def __init__(self, metrics: Metrics, server: MetricsServer | None = None) -> None:
        self.metrics = metrics
        self.server = server

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "classgate_metrics",
            str,
            "",
            "Serve Prometheus metrics on HOST:PORT (empty = off). Keep it on 127.0.0.1 or the admin LAN.",
        )

    def configure(self, updated: set[str]) -> None:
        if "classgate_metrics" in updated and ctx.options.classgate_metrics:
            try:
                parse_address(ctx.options.classgate_metrics)
            except ValueError as e:
                raise exceptions.OptionsError(f"classgate_metrics: {e}") from None

    def running(self) -> None:
        if not ctx.options.classgate_metrics or self.server is not None:
            return
        host, port = parse_address(ctx.options.classgate_metrics)
        self.server = metrics_server.start(self.metrics, host, port)
        log.info("metrics at %s/metrics", self.server.url)

    def done(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
