"""mitmproxy's layer decision, with classgate asked first about a TLS connection: a passthrough becomes a relay.

mitmproxy's NextLayer addon picks each connection's protocol layers from its first bytes. For TLS it stacks a
server and a client TLS layer at once, and only the client TLS layer reads the whole ClientHello and fires
`tls_clienthello`, where classgate decides. A connection passed through then still runs under both TLS layers
for its whole life (each chunk relayed through two layers that do nothing), and mitmproxy's own
`--ignore-hosts` avoids exactly that by deciding here, before any TLS layer.

`DecidingNextLayer` is mitmproxy's NextLayer (it keeps its name, so the master's pinned list still matches
DumpMaster's) that, where mitmproxy would stack TLS layers, first asks the `classgate` addon's
`early_layer` (the TLS gate, proxy/addons/tls_gate.py) with the bytes buffered so far: it relays the
connection itself, asks to wait for the rest of the ClientHello, or leaves the choice to mitmproxy, whose TLS
layer then applies what the gate decided. Without the classgate addon (or in mitmproxy's own DumpMaster,
under `mitmdump -s`), it is mitmproxy's NextLayer and the gate decides in `tls_clienthello` alone.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable

from mitmproxy import ctx
from mitmproxy.addons.next_layer import NextLayer, stack_match
from mitmproxy.net.tls import starts_like_tls_record
from mitmproxy.proxy import layer
from mitmproxy.proxy.layers import modes

log = logging.getLogger(__name__)


class EarlyOutcome(enum.Enum):
    RELAYED = "relayed"  # the decider set the layer (a passthrough: a plain relay)
    WAITING = "waiting"  # the ClientHello is not all there: ask again when more bytes arrive
    LATER = "later"  # mitmproxy chooses its layers; the TLS layer applies what was decided, or decides


EarlyDecider = Callable[[layer.NextLayer], "EarlyOutcome | Awaitable[EarlyOutcome]"]


class DecidingNextLayer(NextLayer):
    name = "nextlayer"  # mitmproxy's name for the addon this one stands in for

    def __init__(self) -> None:
        super().__init__()
        self.decider: EarlyDecider | None = None

    def running(self) -> None:
        # Looked up, not wired: the master loads this addon before classgate's own (mitmproxy's order).
        self.decider = getattr(ctx.master.addons.get("classgate"), "early_layer", None)

    def next_layer(self, nextlayer: layer.NextLayer) -> Awaitable[None] | None:
        if nextlayer.layer is not None:
            return None
        if self.decider is None or not self._tls_where_mitmproxy_stacks_tls_layers(nextlayer):
            super().next_layer(nextlayer)
            return None
        outcome = self.decider(nextlayer)
        if isinstance(outcome, EarlyOutcome):
            self._follow(nextlayer, outcome)
            return None
        return self._follow_after(nextlayer, outcome)

    async def _follow_after(self, nextlayer: layer.NextLayer, pending: Awaitable[EarlyOutcome]) -> None:
        self._follow(nextlayer, await pending)

    def _follow(self, nextlayer: layer.NextLayer, outcome: EarlyOutcome) -> None:
        if outcome is EarlyOutcome.LATER:
            super().next_layer(nextlayer)

    def _tls_where_mitmproxy_stacks_tls_layers(self, nextlayer: layer.NextLayer) -> bool:
        """The case of NextLayer._next_layer's step 3a (TLS over TCP), after its steps 1 and 2 declined."""
        context = nextlayer.context
        if self.ignore_hosts or self.allow_hosts:
            return False  # step 1: mitmproxy's own --ignore-hosts / --allow-hosts come first
        if stack_match(context, [modes.ReverseProxy]) or stack_match(
                context, [(modes.HttpProxy, modes.HttpUpstreamProxy)]):
            return False  # step 2: the proxy's own first bytes (a CONNECT, a request, TLS to the proxy)
        if context.client.transport_protocol != "tcp" or context.client.tls:
            return False  # DTLS and QUIC, and TLS inside TLS, go mitmproxy's way
        return starts_like_tls_record(nextlayer.data_client())
