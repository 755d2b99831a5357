"""One mitmproxy addon that runs the classgate components in order.

mitmproxy calls every event (about sixteen per request, counting the `update` events) on every
top-level addon, with a context manager and a coroutine each, whether or not the addon has a
handler: each extra top-level addon cost ~1-2% of the proxy's CPU per request in bench_proxy.py.
The components therefore stay small single-purpose classes (proxy/addons/*.py), but mitmproxy sees
one addon whose handlers call the components that implement each hook, in list order.

A component hook that raises on a flow is fail-closed here too: the flow is killed rather than
left to the remaining components (which could be the filter).
"""

from __future__ import annotations

import logging
from typing import Any

from proxy.failsafe import FailSafe

log = logging.getLogger(__name__)

LIFECYCLE = ("load", "configure", "running", "done")
FLOW_HOOKS = ("http_connect", "requestheaders", "response", "error", "tcp_start", "tcp_message")
TLS_HOOKS = ("tls_clienthello", "tls_start_client")
OTHER_HOOKS = ("client_disconnected", "server_connect")


class Classgate:
    def __init__(self, components: list[Any], failsafe: FailSafe) -> None:
        self.components = components
        self.failsafe = failsafe
        self._hooks: dict[str, list[Any]] = {
            name: [getattr(c, name) for c in components if callable(getattr(c, name, None))]
            for name in (*LIFECYCLE, *FLOW_HOOKS, *TLS_HOOKS, *OTHER_HOOKS)
        }

    # -- lifecycle: errors propagate, as they would from separate addons (start-up must fail loudly)
    def load(self, loader) -> None:
        for hook in self._hooks["load"]:
            hook(loader)

    def configure(self, updated: set[str]) -> None:
        for hook in self._hooks["configure"]:
            hook(updated)

    def running(self) -> None:
        for hook in self._hooks["running"]:
            hook()

    def done(self) -> None:
        for hook in self._hooks["done"]:
            try:
                hook()
            except Exception:  # one component's shutdown must not stop the others'
                log.exception("shutting down %r failed", hook)

    # -- flows
    def _flow(self, name: str, flow: Any) -> None:
        for hook in self._hooks[name]:
            try:
                hook(flow)
            except Exception as e:  # noqa: BLE001 - fail closed: never let a flow past a broken step
                self.failsafe.failed("response" if name in ("response", "error") else "request", e)
                if name in ("response", "error"):
                    continue  # the decision is made; counting failed
                if flow.live and not getattr(flow, "response", None):  # TCP flows have no response
                    flow.kill()
                return

    def http_connect(self, flow: Any) -> None:
        self._flow("http_connect", flow)

    def requestheaders(self, flow: Any) -> None:
        self._flow("requestheaders", flow)

    def response(self, flow: Any) -> None:
        self._flow("response", flow)

    def error(self, flow: Any) -> None:
        self._flow("error", flow)

    def tcp_start(self, flow: Any) -> None:
        self._flow("tcp_start", flow)

    def tcp_message(self, flow: Any) -> None:
        self._flow("tcp_message", flow)

    # -- TLS: the gate catches its own errors; a raise here is refused by mitmproxy's default path
    def tls_clienthello(self, data: Any) -> None:
        for hook in self._hooks["tls_clienthello"]:
            hook(data)

    def tls_start_client(self, data: Any) -> None:
        for hook in self._hooks["tls_start_client"]:
            hook(data)

    def client_disconnected(self, client: Any) -> None:
        for hook in self._hooks["client_disconnected"]:
            hook(client)

    def server_connect(self, data: Any) -> None:
        for hook in self._hooks["server_connect"]:
            try:
                hook(data)
            except Exception as e:  # noqa: BLE001 - fail closed: no connection past a broken check
                self.failsafe.failed("connect", e)
                data.server.error = "the school network filter could not check this connection"
