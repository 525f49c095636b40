"""Bounded-concurrency vendor calls, consumed in order, written in batches, within a time budget.

Both Game Platform jobs walk a keyset-ordered list (users, teams), call the
vendor for each item from a thread pool, and write results in batches on the
job's one database connection. Results are consumed in input order so that a
batch always ends at a clean cursor: every item up to it has been written, none
after it has. That is what lets a continuation job (or a retry) pick up exactly
where the last committed batch ended, with no item skipped or done twice.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, TypeVar

from lib.game_platform.errors import GamePlatformAuthError, GamePlatformError, GamePlatformUnavailable, NotApproved

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Budget:
    """When vendor calls must stop so the job can still write its last batch and hand over.

    The reserve is a tenth of the time the job was given, between 0.5 and 5
    seconds: ample for one batch write and one enqueue, small against a
    five-minute invocation.
    """

    call_deadline: float  # clock() value: no vendor call starts, waits or runs past it
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def until(cls, deadline: float, clock: Callable[[], float] = time.monotonic) -> Budget:
        reserve = min(5.0, max(0.5, 0.1 * (deadline - clock())))
        return cls(call_deadline=deadline - reserve, clock=clock)

    def can_start_call(self) -> bool:
        return self.clock() < self.call_deadline


class BudgetSpent(Exception):
    """Raised by `fetch_in_order` once it has yielded every started fetch while items remain unstarted."""


def fetch_in_order(
    pool: ThreadPoolExecutor,
    items: Iterator[T],
    fetch: Callable[[T], R],
    *,
    window: int,
    keep_going: Callable[[], bool],
) -> Iterator[tuple[T, R]]:
    """Yield `(item, fetch(item))` in input order, with at most `window` fetches in flight.

    New items are submitted only while `keep_going()` holds. Once it does not,
    the fetches already started are yielded, and then `BudgetSpent` is raised if
    any item is left, so that running out of time is never mistaken for running
    out of items. `fetch` should turn per-item failures into results; anything
    it raises ends the iteration. When the consumer stops early, fetches not yet
    started are cancelled.
    """
    in_flight: deque[tuple[T, Future[R]]] = deque()
    exhausted = False
    try:
        while True:
            while not exhausted and len(in_flight) < window and keep_going():
                try:
                    item = next(items)
                except StopIteration:
                    exhausted = True
                    break
                in_flight.append((item, pool.submit(fetch, item)))
            if not in_flight:
                if exhausted or next(items, _NOTHING) is _NOTHING:
                    return
                raise BudgetSpent
            item, future = in_flight.popleft()
            yield item, future.result()
    finally:
        for _, future in in_flight:
            future.cancel()


_NOTHING: Any = object()


class Outcome(Enum):
    """How one fetched item bears on the walk as a whole."""

    DONE = "done"  # an answer (success, 404, a rejected request): write it
    REFUSED = "refused"  # a 403 on the user's scores: not approved, unless the vendor refuses everyone
    UNAVAILABLE = "unavailable"  # the vendor did not answer usefully: write it, unless many in a row failed
    DEFERRED = "deferred"  # the budget ran out: stop here, the continuation does the rest


# A walk whose first ten users are all refused (403), with no other answer among
# them, is taken to have a token the vendor does not accept: in production an
# unapproved user is the exception, and ten in a row with nobody approved is
# not bad luck. A walk of fewer users refused to the last one counts the same.
REFUSAL_THRESHOLD = 10


class EveryoneRefused(GamePlatformAuthError):
    """Every user asked so far was refused (403) and no call succeeded: the credentials, not the users."""

    def __init__(self, count: int, example: str) -> None:
        super().__init__(
            f"The Game Platform refused (HTTP 403) the scores of all {count} users asked and accepted none "
            f"({example}). Check GAME_PLATFORM_API_TOKEN."
        )


class VendorOutage(Exception):
    """Too many calls in a row found the vendor unavailable: the job stops so the queue retries it later."""

    def __init__(self, count: int, last_error: GamePlatformError | None) -> None:
        super().__init__(
            f"the Game Platform failed {count} calls in a row; stopping the job to retry later"
            + (f" (last error: {last_error})" if last_error else "")
        )
        self.last_error = last_error


class DrainEnd(Enum):
    EXHAUSTED = "exhausted"  # every item was written
    OUT_OF_TIME = "out_of_time"  # items remain for a continuation


@dataclass
class Drain(Generic[T, R]):
    """Consume ordered results, flushing batches; stop when time runs out or on an outage.

    Time runs out at the first `DEFERRED` result (a call cut by the budget) or
    when `fetch_in_order` raises `BudgetSpent`; either way the items written are
    exactly those before the stopping point.

    A run of consecutive `UNAVAILABLE` items is held back from flushing: if it
    reaches `outage_threshold`, those items are not recorded as per-item failures
    (the vendor is down, not they) and `VendorOutage` is raised after the items
    before them are flushed, so a retry starts with the first of them. A shorter
    run is flushed as ordinary failures.

    `REFUSED` items are held back the same way until some call gets an answer
    (`answered`, which a continuation starts with when its sync run or sweep
    already had one): if `REFUSAL_THRESHOLD` of them, or every item there was, came before
    any answer, `EveryoneRefused` is raised and none of them is written, so
    that a bad token is a configuration error of the job rather than a roster
    of "not approved" users. Once an answer came, a refusal is that user's.
    """

    classify: Callable[[R], Outcome]
    flush: Callable[[list[tuple[T, R]]], None]
    batch_size: int
    outage_threshold: int
    error_of: Callable[[R], GamePlatformError | None]
    answered: bool = False
    describe_refusal: Callable[[R], str] = str

    def run(self, results: Iterator[tuple[T, R]]) -> DrainEnd:
        buffer: list[tuple[T, R]] = []
        streak = 0
        refusals = 0
        try:
            for item, result in results:
                outcome = self.classify(result)
                if outcome is Outcome.DEFERRED:
                    self._flush(buffer)
                    return DrainEnd.OUT_OF_TIME
                buffer.append((item, result))
                if outcome is Outcome.REFUSED and not self.answered:
                    refusals += 1
                    if refusals >= REFUSAL_THRESHOLD:
                        raise EveryoneRefused(refusals, self.describe_refusal(result))
                elif outcome is Outcome.DONE:
                    self.answered = True
                if outcome is Outcome.UNAVAILABLE:
                    streak += 1
                    if streak >= self.outage_threshold:
                        self._flush(buffer[:-streak])
                        raise VendorOutage(streak, self.error_of(result))
                    continue
                streak = 0
                if len(buffer) >= self.batch_size:
                    buffer = self._flush(buffer)
        except BudgetSpent:
            self._flush(buffer)
            return DrainEnd.OUT_OF_TIME
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()
        if refusals and not self.answered:
            last = next(result for _, result in reversed(buffer) if self.classify(result) is Outcome.REFUSED)
            raise EveryoneRefused(refusals, self.describe_refusal(last))
        self._flush(buffer)
        return DrainEnd.EXHAUSTED

    def _flush(self, batch: list[tuple[T, R]]) -> list[tuple[T, R]]:
        """Write the batch, except, while no call has been answered, from its first refusal on; return what is held."""
        held: list[tuple[T, R]] = []
        if not self.answered:
            for index, (_, result) in enumerate(batch):
                if self.classify(result) is Outcome.REFUSED:
                    batch, held = batch[:index], batch[index:]
                    break
        if batch:
            self.flush(batch)
        return held


@dataclass(frozen=True, kw_only=True)
class Fetched:
    """What one item's vendor calls came to, as far as the walk is concerned; each job's result type extends it."""

    refused: NotApproved | None = None  # a 403 on the user's scores
    error: GamePlatformError | None = None  # any other failure, after the client's retries
    deferred: bool = False  # the budget ran out before the calls could finish: the continuation's item

    def outcome(self) -> Outcome:
        if self.deferred:
            return Outcome.DEFERRED
        if self.refused is not None:
            return Outcome.REFUSED
        if isinstance(self.error, GamePlatformUnavailable):
            return Outcome.UNAVAILABLE
        return Outcome.DONE

    def failure(self) -> GamePlatformError | None:
        return self.error

    def describe_refusal(self) -> str:
        return self.refused.describe() if self.refused is not None else "refused"
