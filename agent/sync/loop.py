"""When to poll next: a jittered interval after success, exponential backoff with full jitter after failure.

Thousands of school gateways boot at 07:00; without jitter they would all call the Department in the same
second, forever. Pure arithmetic with an injectable random source, so it is tested as a table.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PollSettings:
    min_interval: float = 300.0  # seconds between polls when all is well: uniform in [min, max]
    max_interval: float = 900.0
    backoff_base: float = 10.0  # first retry after a failure waits up to this
    backoff_max: float = 3600.0  # ... doubling per consecutive failure, never more than this

    def __post_init__(self) -> None:
        if not 0 < self.min_interval <= self.max_interval:
            raise ValueError("poll interval: need 0 < min <= max")
        if not 0 < self.backoff_base <= self.backoff_max:
            raise ValueError("backoff: need 0 < base <= max")


@dataclass
class PollSchedule:
    settings: PollSettings = field(default_factory=PollSettings)
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def after_success(self) -> float:
        self.failures = 0
        s = self.settings
        return self.rng.uniform(s.min_interval, s.max_interval)

    def after_failure(self) -> float:
        """Full jitter (uniform in [base/2, cap]) so gateways that failed together retry apart."""
        self.failures += 1
        s = self.settings
        cap = min(s.backoff_max, s.backoff_base * 2 ** min(self.failures - 1, 32))
        return self.rng.uniform(min(cap, s.backoff_base) / 2, cap)

    def first_delay(self) -> float:
        """A fresh start waits a random part of one interval: a fleet rebooted together spreads out."""
        return self.rng.uniform(0, self.settings.min_interval)
