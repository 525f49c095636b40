"""The completer: writes the jobs' outcomes for the worker and hands back their final states.

Modelled on River's `jobcompleter`: the worker hands each finished job over and
does not write its state itself; the completer decides when to write (a failure
at once, successes held and written together in one statement) and returns what
each write left, so the worker reports a job once, from its final state. When to
flush is the worker's call (lib/worker.py: before a job that is not quick, or
once the oldest held success has waited SUCCESS_HOLD_SECONDS).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, NamedTuple
from uuid import UUID

from lib.queue import ClaimedJob, InvocationSummary, JobState, Queue


class Completed(NamedTuple):
    """A success the completer wrote: the job's state after it, or None when its lease was lost."""

    position: int  # in the invocation's claim
    job: ClaimedJob
    state: JobState | None
    duration_ms: int


class _Held(NamedTuple):
    position: int
    job: ClaimedJob
    output: Any
    duration_ms: int
    finished_at: float


class Completer:
    """Writes the jobs' outcomes and returns their final states, holding quick successes to write them together.

    A failure (`fail`) or a hand-back (`hand_back`) is written at once. A success is held (`hold`) and written
    with the others held — by `flush`, or by `complete_invocation` together with
    the invocation's close — and every write returns the states it left, the
    jobs whose lease was lost (cancelled, taken over) included as None. A write
    that fails leaves its successes held, for the invocation's close to record.
    """

    def __init__(self, queue: Queue, clock: Callable[[], float]) -> None:
        self.queue = queue
        self.clock = clock
        self._held: list[_Held] = []

    @property
    def held(self) -> int:
        """Successes not written yet."""
        return len(self._held)

    def hold(self, position: int, job: ClaimedJob, output: Any, duration_ms: int) -> None:
        self._held.append(_Held(position, job, output, duration_ms, self.clock()))

    def fail(self, job: ClaimedJob, error: str, retry_in: timedelta | None) -> JobState | None:
        """Fail a job now (a retry after `retry_in`, or for good when None); None when its lease was lost."""
        return self.queue.mark_failed(job, error, retry_in)

    def hand_back(self, job: ClaimedJob, delay: timedelta | None) -> bool:
        """Put a job its worker cannot run back to pending, its attempt not spent, due after `delay` (None: now).

        False when its lease was lost meanwhile.
        """
        return self.queue.release([job], delay=delay) == 1

    def flush_if_older_than(self, seconds: float) -> list[Completed]:
        """Write the held successes once the oldest has waited `seconds`; else nothing."""
        if self._held and self._held[0].finished_at <= self.clock() - seconds:
            return self.flush()
        return []

    def flush(self) -> list[Completed]:
        """Write the held successes now, in one statement."""
        if not self._held:
            return []
        states = self.queue.mark_succeeded_batch([(h.job, h.output) for h in self._held])
        return self._completed(states)

    def complete_invocation(self, invocation_id: int, summary: InvocationSummary) -> list[Completed]:
        """Write the held successes and close the invocation with `summary`, in one statement.

        `summary.succeeded` counts the successes recorded before; the database adds the held ones it records.
        """
        states = self.queue.complete_invocation(invocation_id, summary, [(h.job, h.output) for h in self._held])
        return self._completed(states)

    def _completed(self, states: dict[UUID, JobState]) -> list[Completed]:
        held, self._held = self._held, []
        return [Completed(h.position, h.job, states.get(h.job.id), h.duration_ms) for h in held]
