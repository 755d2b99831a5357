"""What the gateway enforces, written to `<state>/policy.json` for `classgate status` and for scripts.

The running gateway is the only writer: after every load or swap, and when a reload is rejected. A stale
file after a crash still says what was last enforced, which is what an admin asks first.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from classgate.policies.atomicfile import atomic_write

log = logging.getLogger(__name__)

FILE = "policy.json"
# A rejected reload's problems, as many as an admin reads; the log has them all.
MAX_PROBLEMS = 20


@dataclass(frozen=True)
class FallbackStatus:
    problems: list[str]  # what is wrong with the configured policy
    kept_version: str
    kept_at: float  # when the last good policy was kept


@dataclass(frozen=True)
class RejectedStatus:
    path: str
    at: float
    problems: list[str]


@dataclass(frozen=True)
class PolicyStatus:
    name: str
    version: str
    source: str  # "file" or "sync"
    policy_path: str
    overlay_path: str | None
    loaded_at: float
    timezone: str = "UTC"  # the policy's: the zone an admin reads these times in
    fallback: FallbackStatus | None = None
    rejected: RejectedStatus | None = None  # the last reload refused since this policy loaded
    written_at: float = field(default_factory=time.time)


def status_file(state_dir: Path) -> Path:
    return Path(state_dir) / FILE


def write_status(state_dir: Path, status: PolicyStatus) -> None:
    """Write the status; never raises (a full disk costs the status file, not the gateway)."""
    try:
        Path(state_dir).mkdir(parents=True, exist_ok=True)
        atomic_write(status_file(state_dir), (json.dumps(asdict(status), indent=2) + "\n").encode())
    except OSError as e:
        log.warning("cannot write %s: %s", status_file(state_dir), e)


def read_status(state_dir: Path) -> dict[str, Any]:
    """The status as written (a plain dict: `classgate status --json` prints it); raises OSError, ValueError."""
    data = json.loads(status_file(state_dir).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")  # noqa: TRY004 (callers catch ValueError, as for bad JSON)
    return data


def bounded(problems: list[str]) -> list[str]:
    if len(problems) <= MAX_PROBLEMS:
        return list(problems)
    return [*problems[:MAX_PROBLEMS], f"... and {len(problems) - MAX_PROBLEMS} more (see the gateway's log)"]
