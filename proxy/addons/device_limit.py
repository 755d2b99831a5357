"""At most so many open connections to the gateway from one device: one device cannot take the gateway from the school.

Every connection a device opens to the proxy costs the gateway a file descriptor and mitmproxy's objects for
it, for as long as the device keeps it open (mitmproxy closes an idle one after 10 minutes). A script on one
phone that opens connections in a loop and never closes them would, unbounded, run the gateway out of
descriptors or memory, and every other device in the school with it. A browser needs far fewer at once
(Chrome keeps at most 256 per profile), so past the limit a device's new connections are closed at once,
before any byte is read; its open ones, and everybody else's, carry on.

The count is per client address as the proxy sees it (a classroom access point that NATs its devices is one
address: raise the limit for it, `classgate run --device-connections`). An IPv6 device that makes up many
addresses in its /64 gets the limit for each: a school's devices share their /64, so the prefix cannot be the
device. With several workers each counts its own connections against its share of the limit (the kernel
spreads a device's connections over them).
The addresses stay in memory only, for as long as they have connections open; they are never logged or
exported (the refusals are counted without them).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from mitmproxy import connection

from classgate.proxy.events import EventRecorder

log = logging.getLogger(__name__)

# Per device, over all workers; 0: no limit. A browser holds tens, a phone rarely more than 100; 2000 leaves
# room for a classroom of 30-40 devices behind one NAT address while one device can take at most ~44 MiB
# and 2000 descriptors (measured: 22 KiB per answered connection).
DEFAULT_DEVICE_CONNECTIONS = 2000
REFUSED = "refused by the school network filter: this device has too many connections open"
LOG_EVERY = 60.0  # seconds between two warnings about refusals (the refusals are all counted)


def worker_share(limit: int, workers: int) -> int:
    """One worker's part of a gateway's per-device limit (0 stays 0: no limit)."""
    return 0 if limit <= 0 else max(1, math.ceil(limit / max(1, workers)))


def _device(client: connection.Client) -> str:
    return str(client.peername[0]) if client.peername else ""


class DeviceConnectionLimit:
    def __init__(self, limit: int, events: EventRecorder, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.events = events
        self._monotonic = monotonic
        self._open: dict[str, int] = {}  # client address -> its connections open in this worker
        self._refused_since_log = 0
        self._last_log: float | None = None

    def client_connected(self, client: connection.Client) -> None:
        device = _device(client)
        held = self._open.get(device, 0) + 1
        self._open[device] = held  # counted whether refused or not: client_disconnected follows either way
        if self.limit > 0 and held > self.limit:
            client.error = REFUSED  # mitmproxy closes the connection before reading from it
            self.events.record_device_limit()
            self._say_refused()

    def client_disconnected(self, client: connection.Client) -> None:
        self.release(client)

    def hold(self, client: connection.Client) -> None:
        """One more connection open for the client's device until `release`: a connection mitmproxy handed
        over (a passthrough relayed outside it, proxy/addons/passthrough_splice.py) still counts."""
        device = _device(client)
        self._open[device] = self._open.get(device, 0) + 1

    def release(self, client: connection.Client) -> None:
        device = _device(client)
        held = self._open.get(device, 0) - 1
        if held > 0:
            self._open[device] = held
        else:
            self._open.pop(device, None)

    def _say_refused(self) -> None:
        self._refused_since_log += 1
        now = self._monotonic()
        if self._last_log is not None and now - self._last_log < LOG_EVERY:
            return
        log.warning("classgate: %d connection(s) refused: a device reached its limit of connections open to the "
                    "gateway (a script; or many devices behind one NAT address: raise classgate run "
                    "--device-connections)", self._refused_since_log)
        self._refused_since_log = 0
        self._last_log = now
