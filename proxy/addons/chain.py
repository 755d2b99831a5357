"""One mitmproxy addon that runs the classgate components in order.

mitmproxy calls every event (about sixteen per request, counting the `update` events) on every
top-level addon, with a context manager and a coroutine each, whether or not the addon has a
handler: each extra top-level addon cost ~1-2% of the proxy's CPU per request in bench_proxy.py.
The components therefore stay small single-purpose classes (proxy/addons/*.py), but mitmproxy sees
one addon whose handlers call the components that implement each hook, in list order.

The handlers are derived from the components: for every mitmproxy hook some component implements, the
chain gets a handler, and what a raise in that hook means is written once in `ON_ERROR`. A component
hook that `ON_ERROR` does not know stops the construction (`ChainError`): a new hook must be decided on,
never silently left uncalled. A raise in a flow hook is fail-closed: the flow is killed rather than left to
the remaining components (which could be the filter).
"""

from __future__ import annotations

import enum
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

# mitmproxy registers a hook when the module defining it is imported: import every such module, so the
# registry (hooks.all_hooks) is complete before the chain compares the components' methods with it.
import mitmproxy.addonmanager
import mitmproxy.log
import mitmproxy.proxy.layers
import mitmproxy.proxy.server_hooks  # noqa: F401
from mitmproxy import hooks

from classgate.proxy.addons.early_layer import EarlyOutcome
from classgate.proxy.failsafe import FailSafe, FailStage

log = logging.getLogger(__name__)


class ChainError(Exception):
    """A component implements a mitmproxy hook the chain has no error policy for."""


class OnError(enum.Enum):
    RAISE = "raise"  # lifecycle: start-up must fail loudly, as it would from a separate addon
    LOG = "log"  # bookkeeping: log it, go on with the other components
    KILL_FLOW = "kill_flow"  # deciding a flow: count it, kill the flow, skip the later components
    COUNT = "count"  # a flow already decided (counting it): count the error, go on
    FAIL_CONNECTION = "fail_connection"  # an upstream connection about to open: make it fail


# What a raise in each hook means, and at which stage it is counted (proxy.failsafe).
ON_ERROR: dict[str, tuple[OnError, FailStage | None]] = {
    "load": (OnError.RAISE, None),
    "configure": (OnError.RAISE, None),
    "running": (OnError.RAISE, None),
    "done": (OnError.LOG, None),
    "client_connected": (OnError.LOG, None),
    "client_disconnected": (OnError.LOG, None),
    "http_connect": (OnError.KILL_FLOW, "connect"),
    "requestheaders": (OnError.KILL_FLOW, "request"),
    "request": (OnError.KILL_FLOW, "request"),
    "response": (OnError.COUNT, "response"),
    "error": (OnError.COUNT, "response"),
    "tcp_start": (OnError.KILL_FLOW, "connect"),
    "tcp_message": (OnError.KILL_FLOW, "connect"),
    "tcp_end": (OnError.COUNT, "response"),
    "tcp_error": (OnError.COUNT, "response"),
    "dns_request": (OnError.KILL_FLOW, "request"),
    "dns_response": (OnError.KILL_FLOW, "request"),
    "dns_error": (OnError.COUNT, "response"),
    "server_connect": (OnError.FAIL_CONNECTION, "connect"),
    "server_connected": (OnError.LOG, None),
    "server_connect_error": (OnError.LOG, None),
    "server_disconnected": (OnError.LOG, None),
    # The TLS gate catches its own errors and refuses the connection itself; a raise that still escapes
    # is counted and re-raised, which makes mitmproxy fail that handshake.
    "tls_clienthello": (OnError.RAISE, "tls"),
    "tls_start_client": (OnError.RAISE, "tls"),
}

Hook = Callable[..., Any]


def known_hooks() -> frozenset[str]:
    """Every hook name mitmproxy has (it must know at least the ones the chain has a policy for)."""
    return frozenset(hooks.all_hooks)


def _hooks_of(components: Sequence[object]) -> dict[str, list[Hook]]:
    found: dict[str, list[Hook]] = {}
    for name in sorted(known_hooks() | ON_ERROR.keys()):
        implementations = [getattr(c, name) for c in components if callable(getattr(c, name, None))]
        if not implementations:
            continue
        if name not in ON_ERROR:
            owners = ", ".join(type(c).__name__ for c in components if callable(getattr(c, name, None)))
            raise ChainError(f"{owners} implement{'s' if ',' not in owners else ''} mitmproxy's {name!r} hook, "
                             "which the chain has no error policy for: add it to ON_ERROR in chain.py")
        found[name] = implementations
    return found


class Classgate:
    """The one addon mitmproxy sees (named `classgate`); `components` is the ordered list it runs."""

    name = "classgate"

    def __init__(self, components: Sequence[object], failsafe: FailSafe) -> None:
        self.components = list(components)
        self.failsafe = failsafe
        self.hooks = _hooks_of(self.components)
        for name, implementations in self.hooks.items():
            setattr(self, name, self._dispatcher(name, implementations))
        deciders = [c for c in self.components if callable(getattr(c, "early_layer", None))]
        if len(deciders) > 1:
            raise ChainError("more than one component decides layers early: "
                             + ", ".join(type(c).__name__ for c in deciders))
        self._early_decider: Callable[[Any], Any] | None = deciders[0].early_layer if deciders else None  # type: ignore[attr-defined]

    def early_layer(self, nextlayer: Any) -> EarlyOutcome | Awaitable[EarlyOutcome]:
        """The layer decision's question to classgate before mitmproxy stacks TLS layers
        (proxy/addons/early_layer.py). An error leaves the choice to mitmproxy, and the decision to the TLS
        layer's `tls_clienthello`, which refuses when it fails too: counted, never a relay."""
        if self._early_decider is None:
            return EarlyOutcome.LATER
        try:
            outcome = self._early_decider(nextlayer)
        except Exception as e:  # noqa: BLE001 - fail closed: decided again, where errors refuse
            self.failsafe.failed("tls", e)
            return EarlyOutcome.LATER
        if isinstance(outcome, EarlyOutcome):
            return outcome
        return self._early_after(outcome)

    async def _early_after(self, pending: Awaitable[EarlyOutcome]) -> EarlyOutcome:
        try:
            return await pending
        except Exception as e:  # noqa: BLE001 - as in early_layer
            self.failsafe.failed("tls", e)
            return EarlyOutcome.LATER

    def _dispatcher(self, name: str, implementations: list[Hook]) -> Hook:
        on_error, stage = ON_ERROR[name]

        # Synchronous while every component is: a coroutine per event would cost every request. The first
        # component that returns an awaitable (an async hook, or a sync one that needs to wait this once)
        # turns the rest of this event into a coroutine, which mitmproxy awaits.
        def dispatch(*args: Any) -> Awaitable[None] | None:
            for i, hook in enumerate(implementations):
                try:
                    result = hook(*args)
                except Exception as e:  # noqa: BLE001 - the policy for this hook decides
                    if self._failed(name, on_error, stage, hook, e, args):
                        return None
                    continue
                if inspect.isawaitable(result):
                    return self._finish(name, result, hook, implementations[i + 1:], args)
            return None

        return dispatch

    async def _finish(self, name: str, pending: Awaitable[Any], hook: Hook, rest: list[Hook],
                      args: tuple[Any, ...]) -> None:
        on_error, stage = ON_ERROR[name]
        try:
            await pending
        except Exception as e:  # noqa: BLE001 - the policy for this hook decides
            if self._failed(name, on_error, stage, hook, e, args):
                return
        for later in rest:
            try:
                result = later(*args)
                if inspect.isawaitable(result):
                    await result
            except Exception as e:  # noqa: BLE001 - the policy for this hook decides
                if self._failed(name, on_error, stage, later, e, args):
                    return

    def _failed(self, name: str, on_error: OnError, stage: FailStage | None, hook: Hook, error: Exception,
                args: tuple[Any, ...]) -> bool:
        """Apply the hook's error policy; True: skip the remaining components for this event."""
        if on_error is OnError.RAISE:
            if stage is not None:
                self.failsafe.failed(stage, error)
            raise error
        if on_error is OnError.LOG:
            log.exception("%s failed in %s; going on", _owner(hook), name)
            return False
        assert stage is not None
        self.failsafe.failed(stage, error)
        if on_error is OnError.COUNT:
            return False
        if on_error is OnError.FAIL_CONNECTION:
            args[0].server.error = "the school network filter could not check this connection"
            return True
        flow = args[0]  # KILL_FLOW
        if flow.live and not getattr(flow, "response", None):  # TCP and DNS flows have no HTTP response
            flow.kill()
        return True


def _owner(hook: Hook) -> str:
    owner: object = getattr(hook, "__self__", hook)
    return type(owner).__name__


__all__ = ["ON_ERROR", "ChainError", "Classgate", "OnError"]
