"""The drain loop behind /api/jobs/run: one invocation of the worker.

One invocation, in two statements when every job succeeds: the first enqueues
the jobs of the schedules that are due (`job_queue_schedules`, also while
paused), records the invocation, reads the pause switch and claims up to
`limit` due jobs under a lease that outlives the invocation; the jobs run one by
one (a failure is recorded at once, in a statement of its own); the last records
the successes together and closes the invocation. Jobs claimed but not reached
before the time budget runs out are released, their attempt not spent.

Successes are held only while the jobs are quick: before a job whose task type
is not marked quick, the held successes are written, so a crash during a long
job re-runs that job alone. A job whose output jsonb cannot store fails alone,
for good, and never spoils the statement that records its neighbours.

Three parts: `Worker.drain` runs the jobs and decides how each ended; the
`Completer` (lib.completer; River's jobcompleter is the model) owns the held
successes, writes every outcome and returns the jobs' final states; the
`WorkerReport` receives each job's result once, when its final state is known.
The edge validates `limit` (lib.endpoints.worker, the CLI); `job_queue_claim`
refuses one below 1.
"""

from __future__ import annotations

import bisect
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from pydantic import ValidationError

from lib.completer import Completed, Completer
from lib.db import Database
from lib.errors import JobNotConfigured, PermanentJobError, RetryJobLater
from lib.fanout import Chain, next_link
from lib.jobs.context import JobContext, describe
from lib.jobs.registry import PayloadRejected, TaskRegistry, default_registry
from lib.jsonb import NotStorableAsJson, storable_json
from lib.observability import capture_job_failure, log
from lib.queue import ClaimedJob, InvocationStart, InvocationSummary, JobState, Queue
from lib.retry import BackoffPolicy
from lib.settings import Settings

# The most jobs one invocation claims: the edge caps `limit` to it (lib.endpoints.worker,
# scripts/jobs.py), and a fan-out's follow-ups ask for it.
MAX_LIMIT = 10


class JobResult(NamedTuple):
    id: str
    task_type: str
    status: str  # the job's status after this invocation; `failed` for an attempt whose lease was lost
    attempts: int
    last_error: str | None
    retry_at: datetime | None
    duration_ms: int
    # Set when this attempt's outcome was not recorded (the job was cancelled, or
    # taken over after the lease expired): what the job's row says now.
    job_status: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "taskType": self.task_type,
            "status": self.status,
            "attempts": self.attempts,
            "lastError": self.last_error,
            "durationMs": self.duration_ms,
        }
        if self.retry_at is not None:
            body["retryAt"] = self.retry_at.isoformat()
        if self.job_status is not None:
            body["leaseLost"] = True
            body["jobStatus"] = self.job_status
        return body


# Starts `count` follow-up invocations carrying `chain`, each claiming up to
# `limit` jobs; returns how many requests were sent (lib.fanout.start_follow_ups).
FollowUps = Callable[[Chain, int, int], int]


class WorkerReport:
    """What one invocation did, in the response's shape. Each job's result is added once, when it is final."""

    def __init__(
        self,
        status: str,
        *,
        paused_reason: str | None = None,
        invocation_id: int | None = None,
        scheduled: tuple[str, ...] = (),
    ) -> None:
        self.status = status  # ok | paused | declined (a follow-up refused by the fan-out bound)
        self.scheduled = scheduled  # schedules whose job this invocation enqueued (or found live)
        self.follow_ups = 0  # follow-up invocations this one started
        self.released = 0
        self.paused_reason = paused_reason
        self.invocation_id = invocation_id
        self._results: list[tuple[int, JobResult]] = []  # (position in the claim, result), in claim order

    def add(self, position: int, result: JobResult) -> None:
        """The result of the job at `position` in the claim, kept in claim order whenever it arrives."""
        bisect.insort(self._results, (position, result), key=lambda item: item[0])

    @property
    def results(self) -> list[JobResult]:
        return [result for _, result in self._results]

    @property
    def succeeded(self) -> int:
        return sum(result.status == "succeeded" for _, result in self._results)

    @property
    def failed(self) -> int:
        return sum(result.status in ("failed", "pending") for _, result in self._results)

    def summary(self, status: str, claimed: int, held: int, error: str | None = None) -> InvocationSummary:
        """The invocation's record, from the results so far and the `held` successes not yet written.

        `succeeded` counts the recorded successes: the statement that writes the held
        ones adds those it records (job_queue_complete_invocation).
        """
        return InvocationSummary(
            status=status,
            claimed=claimed,
            processed=len(self._results) + held,
            succeeded=self.succeeded,
            failed=self.failed,
            released=self.released,
            error=error,
        )

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any]
        if self.status == "paused":
            body = {"status": "paused", "processed": 0, "reason": self.paused_reason}
        elif self.status == "declined":
            body = {"status": "declined", "processed": 0, "reason": self.paused_reason}
        else:
            body = {
                "status": "ok",
                "processed": len(self._results),
                "succeeded": self.succeeded,
                "failed": self.failed,
                "released": self.released,
                "followUps": self.follow_ups,
                "results": [result.to_json() for result in self.results],
            }
        if self.scheduled:
            body["scheduled"] = list(self.scheduled)
        return body


# How a job's handler ended; `Worker._finish` records it.
class _Success(NamedTuple):
    output: Any  # checked JSON text (lib.jsonb.JsonText), or None
    duration_ms: int


class _Failure(NamedTuple):
    error: BaseException
    retry_in: timedelta | None  # None: fail for good
    duration_ms: int


class _NotConfigured(NamedTuple):
    error: JobNotConfigured
    duration_ms: int


_Outcome = _Success | _Failure | _NotConfigured


# Successes are written together, in one statement, when the invocation ends,
# before a job that is not quick, or once the oldest unwritten one is this old.
# Most jobs take milliseconds: one round trip per success would leave the worker
# waiting on the database most of the time. The cost: if the process dies before
# the write, those jobs run again after their lease expires — the at-least-once
# promise every job already lives with (a worker can always die between a job's
# work and its mark). Flushing before every job that may be long bounds that
# cost to the quick jobs of the last second, plus the job that was running.
SUCCESS_HOLD_SECONDS = 1.0

# A job handed back for a setting this worker lacks waits this long before it is
# due again when the worker may fan out (its URL is known): a follow-up started
# at once would claim it, lack the same setting and hand it back, and so on until
# the chain's bounds. (Without fan-out the next invocation is the next cron tick
# or ping.)
NOT_CONFIGURED_DELAY = timedelta(seconds=60)


def _fields(job: ClaimedJob) -> dict[str, Any]:
    return {"job_id": str(job.id), "task_type": job.task_type, "attempts": job.attempts}


class Worker:
    """Runs one invocation's worth of jobs over the invocation's connection."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        registry: TaskRegistry = default_registry,
        policy: BackoffPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        follow_ups: FollowUps | None = None,
    ) -> None:
        self.db = db
        self.queue = Queue(db)
        self.settings = settings
        self.registry = registry
        self.policy = policy or BackoffPolicy(settings.retry_base_seconds, settings.retry_max_seconds)
        self.clock = clock
        self.follow_ups = follow_ups  # None: no fan-out (the worker's URL is not known)

    def drain(
        self,
        *,
        limit: int,
        force: bool,
        trigger_source: str,
        started_at: float | None = None,
        chain: Chain | None = None,
    ) -> WorkerReport:
        """Run up to `limit` due jobs (validated by the caller) within the invocation's time budget.

        `chain`: this invocation is a follow-up of a fan-out (lib.fanout); it runs
        only if admitted under the bound, and it may start follow-ups of its own.
        """
        started_at = self.clock() if started_at is None else started_at
        deadline = started_at + self.settings.worker_max_duration_seconds - self.settings.worker_finish_margin_seconds
        begun = self._begin(limit, force, trigger_source, chain)
        if isinstance(begun, WorkerReport):
            return begun  # a follow-up refused by the fan-out bound
        invocation, claimed = begun
        invocation_id = invocation.invocation_id
        if invocation.scheduled:
            log("worker.schedules_enqueued", invocation_id=invocation_id, schedules=list(invocation.scheduled))
        if not invocation.processing_enabled and not force:
            log("worker.paused", invocation_id=invocation_id, reason=invocation.paused_reason, trigger=trigger_source)
            return WorkerReport(
                status="paused",
                paused_reason=invocation.paused_reason,
                invocation_id=invocation_id,
                scheduled=invocation.scheduled,
            )

        report = WorkerReport(status="ok", invocation_id=invocation_id, scheduled=invocation.scheduled)
        fan_out = self.follow_ups is not None and len(claimed) == limit and invocation.processing_enabled
        if fan_out:
            self._fan_out(chain, report)  # start the follow-ups now: they run while this one works
        completer = Completer(self.queue, self.clock)
        started = 0  # jobs begun; the rest of `claimed` is released if the invocation stops early
        try:
            for position, job in enumerate(claimed):
                if deadline - self.clock() < self.settings.worker_min_job_seconds:
                    unstarted = claimed[position:]
                    started = len(claimed)
                    report.released = self.queue.release(unstarted)
                    log(
                        "worker.budget_exhausted",
                        "warning",
                        invocation_id=invocation_id,
                        released=report.released,
                        job_ids=[str(j.id) for j in unstarted],
                    )
                    break
                if completer.held and not self._is_quick(job):
                    self._add(completer.flush(), report)  # a crash during a long job must not cost the finished ones
                started = position + 1
                self._finish(position, job, self._execute(job, deadline), completer, report)
                self._add(completer.flush_if_older_than(SUCCESS_HOLD_SECONDS), report)
        except Exception as exc:
            # Most often the database went away mid-invocation. The connection is
            # replaced before the next statement if it is found dead, so the held
            # successes are still recorded and the unstarted jobs handed back, not
            # left to wait out their lease.
            self._release_unstarted(invocation_id, claimed[started:], report)
            self._complete(invocation_id, completer, report, len(claimed), status="failed", error=describe(exc))
            raise
        self._complete(invocation_id, completer, report, len(claimed), status="completed")
        if fan_out:
            self._fan_out(chain, report)  # this invocation is closed: its place is free for another
        log(
            "worker.finished",
            invocation_id=invocation_id,
            trigger=trigger_source,
            claimed=len(claimed),
            succeeded=report.succeeded,
            failed=report.failed,
            released=report.released,
            follow_ups=report.follow_ups,
            generation=chain.generation if chain else 0,
            duration_ms=int((self.clock() - started_at) * 1000),
        )
        return report

    def _begin(
        self, limit: int, force: bool, trigger_source: str, chain: Chain | None
    ) -> tuple[InvocationStart, list[ClaimedJob]] | WorkerReport:
        """Record the invocation and claim its jobs; a declined report for a follow-up the bound refuses."""
        lease = timedelta(seconds=self.settings.worker_lease_seconds)
        if chain is None:
            # The key names this invocation, so begin_invocation may be sent again should its reply be lost.
            return self.queue.begin_invocation(trigger_source, limit, force, lease, uuid.uuid4())
        # A follow-up: admitted and begun in one transaction, under the admission's lock.
        with self.db.transaction():
            admission = self.queue.fanout_admit(
                self.settings.worker_max_parallel,
                chain.generation,
                self.settings.worker_fanout_max_generations,
                chain.started_at,
                timedelta(seconds=self.settings.worker_fanout_max_seconds),
            )
            if not admission.admitted:
                log(
                    "worker.follow_up_declined",
                    generation=chain.generation,
                    reason=admission.reason,
                    live_invocations=admission.live_invocations,
                )
                return WorkerReport(status="declined", paused_reason=admission.reason)
            return self.queue.begin_invocation(trigger_source, limit, force, lease, None)

    def _fan_out(self, chain: Chain | None, report: WorkerReport) -> None:
        """Start as many follow-ups as there are free places, while due jobs remain. Never fails the invocation."""
        assert self.follow_ups is not None
        link = next_link(chain)
        if link.generation > self.settings.worker_fanout_max_generations:
            return
        try:
            slots = self.queue.fanout_slots(self.settings.worker_max_parallel)
            if slots:
                report.follow_ups += self.follow_ups(link, slots, MAX_LIMIT)  # follow-ups claim the most they may
        except Exception as exc:  # noqa: BLE001 - fan-out is an optimisation; the next cron tick drains the rest
            log("worker.fan_out_failed", "warning", invocation_id=report.invocation_id, error=describe(exc))

    def _is_quick(self, job: ClaimedJob) -> bool:
        try:
            spec = self.registry.get(job.task_type)
        except Exception:  # noqa: BLE001 - its module fails to import: the job fails in _execute, reported there
            return False
        return spec is None or spec.quick  # an unknown task type fails at once

    def _finish(
        self,
        position: int,
        job: ClaimedJob,
        outcome: _Outcome,
        completer: Completer,
        report: WorkerReport,
    ) -> None:
        """Record how a job ended: a success is held by the completer, anything else is written now."""
        if isinstance(outcome, _Success):
            completer.hold(position, job, outcome.output, outcome.duration_ms)
        elif isinstance(outcome, _NotConfigured):
            delay = NOT_CONFIGURED_DELAY if self.follow_ups is not None else None
            report.add(position, self._hand_back(job, outcome, completer, delay=delay))
        else:
            state = completer.fail(job, describe(outcome.error), outcome.retry_in)
            report.add(position, self._report(job, state, outcome, outcome.duration_ms))

    def _add(self, completed: list[Completed], report: WorkerReport) -> None:
        for c in completed:
            report.add(c.position, self._report(c.job, c.state, None, c.duration_ms))

    def _release_unstarted(self, invocation_id: int, unstarted: list[ClaimedJob], report: WorkerReport) -> None:
        if not unstarted:
            return
        try:
            report.released += self.queue.release(unstarted)
        except Exception as exc:  # noqa: BLE001 - the invocation is failing already; the lease frees them later
            log("worker.release_failed", "warning", invocation_id=invocation_id, error=describe(exc))

    def _complete(
        self,
        invocation_id: int,
        completer: Completer,
        report: WorkerReport,
        claimed: int,
        *,
        status: str,
        error: str | None = None,
    ) -> None:
        """Record the held successes and close the invocation, in one statement."""
        try:
            completed = completer.complete_invocation(
                invocation_id, report.summary(status, claimed, completer.held, error)
            )
        except Exception as exc:
            if status != "failed":
                raise
            # The invocation is failing already (most often: the database went away); keep its own error.
            log("worker.invocation_record_failed", "warning", invocation_id=invocation_id, error=describe(exc))
            return
        self._add(completed, report)

    def _execute(self, job: ClaimedJob, deadline: float) -> _Outcome:
        """Run one job's handler and say how it ended; writes nothing."""
        started = self.clock()
        log("job.started", **_fields(job), max_attempts=job.max_attempts)

        def took() -> int:
            return int((self.clock() - started) * 1000)

        try:
            output = self._call_handler(job, deadline)
            stored = None if output is None else _storable_output(output)
        except JobNotConfigured as exc:
            return _NotConfigured(exc, took())
        except PermanentJobError as exc:
            return _Failure(exc, None, took())
        except RetryJobLater as exc:
            return _Failure(exc, self.policy.delay(job.attempts, exc.retry_in_seconds), took())
        except Exception as exc:  # noqa: BLE001 - any other handler error is transient: retry with backoff
            return _Failure(exc, self.policy.delay(job.attempts), took())
        return _Success(stored, took())

    def _hand_back(
        self, job: ClaimedJob, outcome: _NotConfigured, completer: Completer, *, delay: timedelta | None
    ) -> JobResult:
        """A configuration error: the job goes back to pending unstarted, its attempt not spent."""
        error = describe(outcome.error)
        released = completer.hand_back(job, delay)
        status = "pending" if released else (self.queue.status_of(job.id) or "deleted")
        log("job.not_configured", "warning", **_fields(job), error=error, handed_back=released)
        _capture(job, outcome.error, permanent=False)
        attempts = job.attempts - 1 if released else job.attempts
        return JobResult(str(job.id), job.task_type, status, attempts, error, None, outcome.duration_ms)

    def _call_handler(self, job: ClaimedJob, deadline: float) -> Any:
        spec = self.registry.get(job.task_type)
        if spec is None:
            raise PermanentJobError(
                f"unknown task type {job.task_type!r}; this worker runs: {', '.join(self.registry.task_types())}"
            )
        try:
            payload = spec.payload_model.model_validate(job.payload)
        except ValidationError as exc:
            raise PermanentJobError(str(PayloadRejected.from_error(job.task_type, exc))) from None
        ctx = JobContext(
            job_id=job.id,
            task_type=job.task_type,
            attempts=job.attempts,
            max_attempts=job.max_attempts,
            deadline=deadline,
            db=self.db,
            queue=self.queue,
            settings=self.settings,
        )
        return spec.handle(ctx, payload)

    def _report(self, job: ClaimedJob, state: JobState | None, failure: _Failure | None, duration_ms: int) -> JobResult:
        fields = _fields(job)
        if state is None:
            # Fenced out: cancelled meanwhile, or our lease expired and another
            # worker took over. Whatever the job's row says now is not this
            # attempt's doing, so the result is this attempt's: failed, unrecorded.
            status = self.queue.status_of(job.id) or "deleted"
            outcome = "success" if failure is None else "failure"
            why = (
                "the job was cancelled while it ran"
                if status == "cancelled"
                else f"its lease expired and the job was taken over (the job is {status} now)"
            )
            error = f"lease lost: {why}; this attempt's {outcome} was not recorded"
            log("job.lease_lost", "warning", **fields, status=status, duration_ms=duration_ms)
            return JobResult(str(job.id), job.task_type, "failed", job.attempts, error, None, duration_ms, status)

        if failure is None:
            log("job.succeeded", **fields, duration_ms=duration_ms)
        else:
            permanent = state.status == "failed"
            log(
                "job.failed" if permanent else "job.retry_scheduled",
                "error" if permanent else "warning",
                **fields,
                max_attempts=job.max_attempts,
                duration_ms=duration_ms,
                error=state.last_error,
                retry_at=None if permanent else state.run_at.isoformat(),
                stack=_stack(failure.error),
            )
            _capture(job, failure.error, permanent=permanent)
        return JobResult(
            id=str(job.id),
            task_type=job.task_type,
            status=state.status,
            attempts=state.attempts,
            last_error=state.last_error,
            retry_at=state.run_at if state.status == "pending" else None,
            duration_ms=duration_ms,
        )


def _storable_output(output: Any) -> str:
    """The output as JSON text jsonb will store; a handler that returns anything else has a bug."""
    try:
        return storable_json(output)
    except NotStorableAsJson as exc:
        # Permanent: the same code on the same input returns the same value, so a
        # retry would only repeat the job's work to fail the same way.
        raise PermanentJobError(f"output is not storable as JSON: {exc}") from None


def _capture(job: ClaimedJob, error: BaseException, *, permanent: bool) -> None:
    """Report a job's failure to Sentry with its tags and extras (lib.observability)."""
    capture_job_failure(
        error,
        job_id=str(job.id),
        task_type=job.task_type,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        permanent=permanent,
    )


def _stack(exc: BaseException) -> str | None:
    if isinstance(exc, PermanentJobError | RetryJobLater) and exc.__traceback__ is None:
        return None
    import traceback

    return "".join(traceback.format_exception(exc))
