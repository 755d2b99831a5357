"""What `classgate console` is given, as one typed value built by the command."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from classgate.proxy.address import Address

IDLE_SECONDS: Final = 30 * 60  # a signed-in session unused this long ends (a classroom PC left open)
LIFETIME_SECONDS: Final = 10 * 3600  # and every session ends after a school day, used or not


@dataclass(frozen=True)
class ConsoleSettings:
    state_dir: Path
    listen: Address
    policy_path: Path | None = None  # None: the policy the gateway enforces (STATE/last-good)
    overlay_path: Path | None = None
    metrics: Address | None = None  # the gateway's /metrics and /stats.json; None: no usage page
    names: tuple[str, ...] = ()  # extra DNS names for the console's certificate
    idle_seconds: float = IDLE_SECONDS
    lifetime_seconds: float = LIFETIME_SECONDS
