"""One Game Platform job's session with the vendor, and the walk-and-write loop all its keyset walks share.

A job opens one session (`vendor_session`): one client (one connection pool),
one thread pool, one time budget. `VendorSession.walk` is how the sync's users,
the sync's teams and the sweep's users are all processed: items from a keyset
walk are fetched on the pool in order (`fetching.fetch_in_order`) and written in
batches on the job's connection (`fetching.Drain`), until the items or the time
run out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from lib.errors import JobNotConfigured, RetryJobLater
from lib.game_platform.client import GamePlatformClient
from lib.game_platform.errors import (
    DeadlineReached,
    GamePlatformAuthError,
    GamePlatformError,
    GamePlatformNotConfigured,
    GamePlatformRateLimited,
    NotApproved,
    RemoteMissing,
)
from lib.game_platform.fetching import Budget, Drain, DrainEnd, Fetched, VendorOutage, fetch_in_order
from lib.game_platform.models import FlashCTFProgressItem, FlashCTFProgressResponse, ODLScoresResponse
from lib.jobs.context import JobContext

T = TypeVar("T")
F = TypeVar("F", bound=Fetched)


@dataclass(frozen=True, kw_only=True)
class ScoresFetch(Fetched):
    """A user's scores: the ODL answer (or why there is none) and, when asked for, flash-CTF progress."""

    odl: ODLScoresResponse | None = None
    flash: FlashCTFProgressResponse | None = None
    no_flash_progress: bool = False  # asked for, and the vendor has none (404, or 403)
    missing: RemoteMissing | None = None  # a 404 on the ODL scores: the platform does not know the user

    @property
    def flash_ctfs(self) -> list[FlashCTFProgressItem]:
        return list(self.flash.flash_ctfs) if self.flash is not None else []

    @property
    def last_accessed(self) -> datetime | None:
        """When the user last used the platform, as the vendor says (`last_accessed_unix_timestamp`)."""
        return _unix_time(self.odl.last_accessed_unix_timestamp if self.odl is not None else None)

    @property
    def last_activity(self) -> datetime | None:
        """The user's last access, else the latest solve in this answer."""
        if self.odl is None or self.last_accessed is not None:
            return self.last_accessed
        solves = [*self.odl.challenge_solves, *(s for item in self.flash_ctfs for s in item.challenge_solves)]
        return _unix_time(max((s.timestamp_unix for s in solves if s.timestamp_unix is not None), default=None))


def _unix_time(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


@dataclass
class VendorSession:
    """A job's connection to the vendor: one client (one connection pool), one thread pool, one budget."""

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

    def walk(
        self,
        items: Iterator[T],
        fetch: Callable[[T], F],
        write: Callable[[list[tuple[T, F]]], None],
        *,
        result: type[F],
        batch_size: int,
        answered: bool = False,
    ) -> DrainEnd:
        """Fetch each item on the pool, in order, and `write` the results in batches of `batch_size`.

        `fetch` runs on a pool thread. A vendor error it lets through becomes
        the item's result (`result(error=…)`), a call the budget cut short a
        deferred one (the item is the continuation's); bad credentials end the
        walk. `write` runs on the job's thread, and every item up to the end of
        a written batch is done. `answered`: a call of this sync run or sweep
        was answered already (a continuation's), so a 403 is that user's.
        """

        def guarded(item: T) -> F:
            try:
                return fetch(item)
            except GamePlatformAuthError:
                raise
            except DeadlineReached:
                return result(deferred=True)
            except GamePlatformError as exc:
                return result(error=exc)

        results = fetch_in_order(self.pool, items, guarded, window=self.window, keep_going=self.budget.can_start_call)
        drain: Drain[T, F] = Drain(
            classify=result.outcome,
            flush=write,
            batch_size=batch_size,
            outage_threshold=self.outage_threshold,
            error_of=result.failure,
            answered=answered,
            describe_refusal=result.describe_refusal,
        )
        return drain.run(results)

    def fetch_scores(self, syned_user_id: str, *, after_time_unix: int | None = None, flash: bool) -> ScoresFetch:
        """A user's ODL scores (solves after `after_time_unix`), and flash-CTF progress if `flash`."""
        odl = self.client.get_odl_scores(syned_user_id, after_time_unix=after_time_unix)
        if isinstance(odl, RemoteMissing):
            return ScoresFetch(missing=odl)
        if isinstance(odl, NotApproved):
            return ScoresFetch(refused=odl)
        if not flash:
            return ScoresFetch(odl=odl)
        answer = self.client.get_flash_ctf_progress(syned_user_id)
        # The user exists (the ODL scores say so): a 404 here means no flash-CTF
        # progress, and a 403 that the platform shows none; the ODL results stand.
        if isinstance(answer, RemoteMissing | NotApproved):
            return ScoresFetch(odl=odl, no_flash_progress=True)
        return ScoresFetch(odl=odl, flash=answer)


@contextmanager
def vendor_session(ctx: JobContext) -> Iterator[VendorSession]:
    """Open the job's client and thread pool; on exit, wait for stray calls, then close the pool of connections."""
    budget = Budget.until(ctx.deadline)
    concurrency = ctx.settings.game_platform_concurrency
    with (
        GamePlatformClient.from_settings(ctx.settings, deadline=budget.call_deadline) as client,
        ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="game-platform") as pool,
    ):
        yield VendorSession(client=client, pool=pool, budget=budget, concurrency=concurrency)


@contextmanager
def job_errors() -> Iterator[None]:
    """Let a job-level failure reach the queue as what it means for the job.

    A missing token is this worker's configuration error, not the job's: the job
    is handed back with its attempt unspent, for a worker that has the token. A
    vendor outage behind a rate limit retries when the vendor said to; anything
    else (bad credentials, an outage, a database error) goes through as it is
    and retries with backoff.
    """
    try:
        yield
    except GamePlatformNotConfigured as exc:
        raise JobNotConfigured(str(exc)) from exc
    except VendorOutage as exc:
        retry_after = exc.last_error.retry_after if isinstance(exc.last_error, GamePlatformRateLimited) else None
        if retry_after is None:
            raise
        raise RetryJobLater(str(exc), retry_in_seconds=retry_after) from exc
