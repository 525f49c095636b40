"""The drain loop behind /api/jobs/run.

One invocation, in two statements when every job succeeds: the first enqueues
the jobs of the schedules that are due (`job_queue_schedules`, also while
paused), records the run, reads the pause switch and claims up to `limit` due
jobs under a lease that outlives the invocation; the jobs run one by one (a
failure is recorded at once, in a statement of its own); the last records the successes together and
closes the run. Jobs claimed but not reached before the time budget runs out
are released, their attempt not spent.

Successes are held only while the jobs are quick: before a job whose task type
is not marked quick, the held successes are written, so a crash during a long
job re-runs that job alone. A job whose output jsonb cannot store fails alone,
for good, and never spoils the statement that records its neighbours.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import ValidationError

from lib.db import Database
from lib.errors import JobNotConfigured, PermanentJobError, RetryJobLater
from lib.fanout import Chain, next_link
from lib.jobs.context import JobContext, describe
from lib.jobs.registry import TaskRegistry, default_registry
from lib.jsonb import NotStorableAsJson, storable_json
from lib.observability import capture_job_failure, log
from lib.queue import ClaimedJob, JobState, Queue, RunSummary
from lib.retry import BackoffPolicy
from lib.settings import Settings

if TYPE_CHECKING:
    from uuid import UUID

MAX_LIMIT = 10


class JobResult(NamedTuple):
    id: str
    task_type: str
    status: str  # the job's status after this run; `failed` for an attempt whose lease was lost
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
    """What one invocation did, in the response's shape."""

    def __init__(
        self,
        status: str,
        *,
        paused_reason: str | None = None,
        run_id: int | None = None,
        scheduled: tuple[str, ...] = (),
    ) -> None:
        self.status = status  # ok | paused | declined (a follow-up refused by the fan-out bound)
        self.scheduled = scheduled  # schedules whose job this invocation enqueued (or found live)
        self.follow_ups = 0  # follow-up invocations this one started
        self.results: list[JobResult | None] = []  # None: a success not yet recorded
        self.released = 0
        self.paused_reason = paused_reason
        self.run_id = run_id

    @property
    def succeeded(self) -> int:
        return sum(r is not None and r.status == "succeeded" for r in self.results)

    @property
    def failed(self) -> int:
        return sum(r is not None and r.status in ("failed", "pending") for r in self.results)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any]
        if self.status == "paused":
            body = {"status": "paused", "processed": 0, "reason": self.paused_reason}
        elif self.status == "declined":
            body = {"status": "declined", "processed": 0, "reason": self.paused_reason}
        else:
            body = {
                "status": "ok",
                "processed": len(self.results),
                "succeeded": self.succeeded,
                "failed": self.failed,
                "released": self.released,
                "followUps": self.follow_ups,
                "results": [r.to_json() for r in self.results if r is not None],
            }
        if self.scheduled:
            body["scheduled"] = list(self.scheduled)
        return body


class _Failure(NamedTuple):
    error: BaseException
    retry_in: timedelta | None  # None: fail for good


class _Success(NamedTuple):
    job: ClaimedJob
    output: Any  # checked JSON text (lib.jsonb.JsonText), or None
    duration_ms: int
    finished_at: float


# Successes are written together, in one statement, when the invocation ends,
# before a job that is not quick, or once the oldest unwritten one is this old.
# Most jobs take milliseconds: one round trip per success would leave the worker
# waiting on the database most of the time. The cost: if the process dies before
# the write, those jobs run again after their lease expires — the at-least-once
# promise every job already lives with (a worker can always die between a job's
# work and its mark). Flushing before every job that may be long bounds that
# cost to the quick jobs of the last second, plus the job that was running.
SUCCESS_HOLD_SECONDS = 1.0


class _UnrecordedSuccesses:
    """Successes not yet written, with the position of each in the report."""

    def __init__(self) -> None:
        self.items: list[tuple[int, _Success]] = []

    def add(self, position: int, success: _Success) -> None:
        self.items.append((position, success))

    def older_than(self, moment: float) -> bool:
        return bool(self.items) and self.items[0][1].finished_at <= moment

    def take(self) -> list[tuple[int, _Success]]:
        items, self.items = self.items, []
        return items


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

    def run(
        self,
        *,
        limit: int,
        force: bool,
        trigger_source: str,
        started_at: float | None = None,
        chain: Chain | None = None,
    ) -> WorkerReport:
        """Drain up to `limit` due jobs within the invocation's time budget.

        `chain`: this invocation is a follow-up of a fan-out (lib.fanout); it runs
        only if admitted under the bound, and it may start follow-ups of its own.
        """
        started_at = self.clock() if started_at is None else started_at
        deadline = started_at + self.settings.worker_max_duration_seconds - self.settings.worker_finish_margin_seconds
        limit = max(1, min(limit, MAX_LIMIT))
        lease = timedelta(seconds=self.settings.worker_lease_seconds)

        # Names this invocation, so begin_run may be sent again should its reply be lost.
        invocation_id = uuid.uuid4()
        if chain is not None:
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
                        live_runs=admission.live_runs,
                    )
                    return WorkerReport(status="declined", paused_reason=admission.reason)
                run, claimed = self.queue.begin_run(trigger_source, limit, force, lease, None)
        else:
            run, claimed = self.queue.begin_run(trigger_source, limit, force, lease, invocation_id)
        if run.scheduled:
            log("worker.schedules_enqueued", run_id=run.run_id, schedules=list(run.scheduled))
        if not run.processing_enabled and not force:
            log("worker.paused", run_id=run.run_id, reason=run.paused_reason, trigger=trigger_source)
            return WorkerReport(
                status="paused", paused_reason=run.paused_reason, run_id=run.run_id, scheduled=run.scheduled
            )

        report = WorkerReport(status="ok", run_id=run.run_id, scheduled=run.scheduled)
        fan_out = self.follow_ups is not None and len(claimed) == limit and run.processing_enabled
        if fan_out:
            self._fan_out(chain, report)  # start the follow-ups now: they run while this one works
        successes = _UnrecordedSuccesses()
        started = 0  # jobs begun; the rest of `claimed` is released if the run stops early
        try:
            for index, job in enumerate(claimed):
                if deadline - self.clock() < self.settings.worker_min_job_seconds:
                    unstarted = claimed[index:]
                    started = len(claimed)
                    report.released = self.queue.release(unstarted)
                    log(
                        "worker.budget_exhausted",
                        "warning",
                        run_id=run.run_id,
                        released=report.released,
                        job_ids=[str(j.id) for j in unstarted],
                    )
                    break
                if successes.items and not self._is_quick(job):
                    self._flush(successes, report)  # a crash during a long job must not cost the finished ones
                started = index + 1
                outcome = self._execute(job, deadline)
                if isinstance(outcome, _Success):
                    successes.add(len(report.results), outcome)
                    report.results.append(None)  # filled in once the success is recorded
                else:
                    report.results.append(outcome)
                if successes.older_than(self.clock() - SUCCESS_HOLD_SECONDS):
                    self._flush(successes, report)
        except Exception as exc:
            # Most often the database went away mid-run. The connection is replaced
            # before the next statement if it is found dead, so the held successes
            # are still recorded and the unstarted jobs handed back, not left to
            # wait out their lease.
            self._release_unstarted(run.run_id, claimed[started:], report)
            self._complete(run.run_id, report, len(claimed), successes, status="failed", error=describe(exc))
            raise
        self._complete(run.run_id, report, len(claimed), successes, status="completed")
        if fan_out:
            self._fan_out(chain, report)  # this run is closed: its place is free for another
        log(
            "worker.finished",
            run_id=run.run_id,
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

    def _fan_out(self, chain: Chain | None, report: WorkerReport) -> None:
        """Start as many follow-ups as there are free places, while due jobs remain. Never fails the run."""
        assert self.follow_ups is not None
        link = next_link(chain)
        if link.generation > self.settings.worker_fanout_max_generations:
            return
        try:
            slots = self.queue.fanout_slots(self.settings.worker_max_parallel)
            if slots:
                report.follow_ups += self.follow_ups(link, slots, MAX_LIMIT)  # follow-ups claim the most they may
        except Exception as exc:  # noqa: BLE001 - fan-out is an optimisation; the next cron tick drains the rest
            log("worker.fan_out_failed", "warning", run_id=report.run_id, error=describe(exc))

    def _is_quick(self, job: ClaimedJob) -> bool:
        try:
            spec = self.registry.get(job.task_type)
        except Exception:  # noqa: BLE001 - its module fails to import: the job fails in _execute, reported there
            return False
        return spec is None or spec.quick  # an unknown task type fails at once

    def _flush(self, successes: _UnrecordedSuccesses, report: WorkerReport) -> None:
        """Record the held successes now, in one statement; should it fail, they stay held for the run's close."""
        held = list(successes.items)
        states = self.queue.mark_succeeded_batch([(s.job, s.output) for _, s in held])
        successes.take()
        self._place(held, states, report)

    def _release_unstarted(self, run_id: int, unstarted: list[ClaimedJob], report: WorkerReport) -> None:
        if not unstarted:
            return
        try:
            report.released += self.queue.release(unstarted)
        except Exception as exc:  # noqa: BLE001 - the run is failing already; the lease frees them later
            log("worker.release_failed", "warning", run_id=run_id, error=describe(exc))

    def _complete(
        self,
        run_id: int,
        report: WorkerReport,
        claimed: int,
        successes: _UnrecordedSuccesses,
        *,
        status: str,
        error: str | None = None,
    ) -> None:
        """Record the held successes and close the run, in one statement."""
        held = successes.take()
        summary = RunSummary(
            status=status,
            claimed=claimed,
            processed=len(report.results),
            succeeded=report.succeeded,  # recorded so far; the held ones are counted as they are recorded
            failed=report.failed,
            released=report.released,
            error=error,
        )
        try:
            states = self.queue.complete_run(run_id, summary, [(s.job, s.output) for _, s in held])
        except Exception as exc:
            if status != "failed":
                raise
            # The run is failing already (most often: the database went away); keep its own error.
            log("worker.run_record_failed", "warning", run_id=run_id, error=describe(exc))
            return
        self._place(held, states, report)

    def _place(self, held: list[tuple[int, _Success]], states: dict[UUID, JobState], report: WorkerReport) -> None:
        """Put the results of recorded successes in their places in the report."""
        for position, success in held:
            report.results[position] = self._report(success.job, states.get(success.job.id), None, success.duration_ms)

    def _execute(self, job: ClaimedJob, deadline: float) -> JobResult | _Success:
        """Run one job. A failure is recorded at once; a success is handed back to be recorded in a batch."""
        started = self.clock()
        log("job.started", **_fields(job), max_attempts=job.max_attempts)
        try:
            output = self._call_handler(job, deadline)
            stored = None if output is None else _storable_output(output)
        except JobNotConfigured as exc:
            return self._hand_back(job, exc, int((self.clock() - started) * 1000))
        except PermanentJobError as exc:
            failure = _Failure(exc, None)
        except RetryJobLater as exc:
            failure = _Failure(exc, self.policy.delay(job.attempts, exc.retry_in_seconds))
        except Exception as exc:  # noqa: BLE001 - any other handler error is transient: retry with backoff
            failure = _Failure(exc, self.policy.delay(job.attempts))
        else:
            finished = self.clock()
            return _Success(job, stored, int((finished - started) * 1000), finished)
        state = self.queue.mark_failed(job, describe(failure.error), failure.retry_in)
        return self._report(job, state, failure, int((self.clock() - started) * 1000))

    def _hand_back(self, job: ClaimedJob, exc: JobNotConfigured, duration_ms: int) -> JobResult:
        """A configuration error: the job goes back to pending unstarted, its attempt not spent."""
        error = describe(exc)
        released = self.queue.release([job]) == 1
        status = "pending" if released else (self.queue.status_of(job.id) or "deleted")
        log("job.not_configured", "warning", **_fields(job), error=error, handed_back=released)
        capture_job_failure(
            exc,
            job_id=str(job.id),
            task_type=job.task_type,
            attempts=job.attempts,
            max_attempts=job.max_attempts,
            permanent=False,
        )
        attempts = job.attempts - 1 if released else job.attempts
        return JobResult(str(job.id), job.task_type, status, attempts, error, None, duration_ms)

    def _call_handler(self, job: ClaimedJob, deadline: float) -> Any:
        spec = self.registry.get(job.task_type)
        if spec is None:
            raise PermanentJobError(
                f"unknown task type {job.task_type!r}; this worker runs: {', '.join(self.registry.task_types())}"
            )
        try:
            payload = spec.payload_model.model_validate(job.payload)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}"
                for e in exc.errors(include_url=False, include_input=False)
            )
            raise PermanentJobError(f"invalid payload for {job.task_type}: {problems}") from None
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
            capture_job_failure(
                failure.error,
                job_id=str(job.id),
                task_type=job.task_type,
                attempts=job.attempts,
                max_attempts=job.max_attempts,
                permanent=permanent,
            )
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


def _stack(exc: BaseException) -> str | None:
    if isinstance(exc, PermanentJobError | RetryJobLater) and exc.__traceback__ is None:
        return None
    import traceback

    return "".join(traceback.format_exception(exc))
