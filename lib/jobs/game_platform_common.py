"""What the two Game Platform handlers share: the vendor session, error reports, job-level failures."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from lib.errors import JobNotConfigured, RetryJobLater
from lib.game_platform.client import GamePlatformClient
from lib.game_platform.errors import GamePlatformNotConfigured, GamePlatformRateLimited
from lib.game_platform.fetching import Budget, VendorOutage
from lib.jobs.context import JobContext

MAX_ITEM_ERRORS = 50


class ItemError(BaseModel):
    """One competitor's, team's or team member's failure, as reported in a job's output."""

    kind: Literal["competitor", "team", "team_member"]
    id: str
    error: str


@dataclass
class VendorSession:
    """A job run's connection to the vendor: one client (one connection pool), one thread pool, one budget."""

    client: GamePlatformClient
    pool: ThreadPoolExecutor
    budget: Budget
    concurrency: int

    @property
    def window(self) -> int:
        """Calls kept in flight: enough to keep every thread busy while the main thread writes a batch."""
        return 2 * self.concurrency

    @property
    def outage_threshold(self) -> int:
        """Consecutive unavailable answers after which the vendor is taken to be down, not the items."""
        return max(10, 2 * self.concurrency)


@contextmanager
def vendor_session(ctx: JobContext) -> Iterator[VendorSession]:
    """Open the run's client and thread pool; on exit, wait for stray calls, then close the pool of connections."""
    budget = Budget.until(ctx.deadline)
    concurrency = ctx.settings.game_platform_concurrency
    with (
        GamePlatformClient.from_settings(ctx.settings, deadline=budget.call_deadline) as client,
        ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="game-platform") as pool,
    ):
        yield VendorSession(client=client, pool=pool, budget=budget, concurrency=concurrency)


def as_job_error(exc: Exception) -> Exception:
    """How a run-level failure reaches the queue.

    A missing token is this worker's configuration error, not the job's: the job
    is handed back with its attempt unspent, for a worker that has the token. A
    vendor outage behind a rate limit retries when the vendor said to; anything
    else (bad credentials, an outage, a database error) retries with backoff.
    """
    if isinstance(exc, GamePlatformNotConfigured):
        return JobNotConfigured(str(exc))
    if isinstance(exc, VendorOutage) and isinstance(exc.last_error, GamePlatformRateLimited):
        retry_after = exc.last_error.retry_after
        if retry_after is not None:
            return RetryJobLater(str(exc), retry_in_seconds=retry_after)
    return exc
