"""When to try a failed job again.

Capped exponential backoff with full jitter: the delay before attempt n+1 is
drawn uniformly from [floor, min(cap, base * 2**(n-1))]. Exponential growth
gives a struggling upstream room to recover; the cap keeps a job from vanishing
for days; full jitter spreads retries of jobs that failed together (one vendor
outage fails many at once) so they do not come back as one thundering herd.
A handler that knows better (an upstream `Retry-After`) names its own delay.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True)
class BackoffPolicy:
    base_seconds: float = 30.0
    cap_seconds: float = 3600.0
    # A retry is never scheduled sooner than this: a job that failed this very
    # second is unlikely to succeed the next.
    floor_seconds: float = 1.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def ceiling(self, attempt: int) -> float:
        """The largest delay after the given (1-based) attempt failed."""
        exponent = min(max(attempt, 1) - 1, 62)  # 2**62 * base is far past any cap
        return max(self.floor_seconds, min(self.cap_seconds, self.base_seconds * 2.0**exponent))

    def delay(self, attempt: int, requested_seconds: float | None = None) -> timedelta:
        """The delay before the next attempt; a handler's own request wins when given."""
        if requested_seconds is not None:
            return timedelta(seconds=max(self.floor_seconds, requested_seconds))
        return timedelta(seconds=self.rng.uniform(self.floor_seconds, self.ceiling(attempt)))
