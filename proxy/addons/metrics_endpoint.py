"""Serve /metrics and /stats.json while the proxy runs (option `classgate_metrics` = HOST:PORT)."""

from __future__ import annotations

import logging
from typing import Any

from mitmproxy import ctx, exceptions

log = logging.getLogger(__name__)


def parse_listen(spec: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """"HOST:PORT", ":PORT", "PORT" or "[v6]:PORT" -> (host, port); raises ValueError."""
    spec = spec.strip()
    if not spec:
        raise ValueError("empty address")
    if spec.startswith("["):
        host, sep, port = spec[1:].partition("]:")
        if not sep:
            raise ValueError(f"{spec!r}: expected [IPv6]:PORT")
    elif ":" in spec:
        host, _, port = spec.rpartition(":")
    else:
        host, port = "", spec
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"{spec!r}: the port must be a number") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"{spec!r}: the port must be between 0 and 65535")
    return host or default_host, number


class MetricsEndpoint:
    def __init__(self, metrics: Any) -> None:
        self.metrics = metrics
        self.server: Any = None

    def load(self, loader) -> None:
        loader.add_option(
            "classgate_metrics",
            str,
            "",
            "Serve Prometheus metrics on HOST:PORT (empty = off). Keep it on 127.0.0.1 or the admin LAN.",
        )

    def configure(self, updated: set[str]) -> None:
        if "classgate_metrics" in updated and ctx.options.classgate_metrics:
            try:
                parse_listen(ctx.options.classgate_metrics)
            except ValueError as e:
                raise exceptions.OptionsError(f"classgate_metrics: {e}") from None

    def running(self) -> None:
        if not ctx.options.classgate_metrics or self.server is not None:
            return
        from metrics import server as metrics_server

        host, port = parse_listen(ctx.options.classgate_metrics)
        self.server = metrics_server.start(self.metrics, host, port)
        log.info("metrics at %s/metrics", self.server.url)

    def done(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
