"""Typed wrappers over the queue's SQL: the only Python that knows it.

Queue behaviour (claiming, leases, retries, fencing) lives in the migration's
functions. Every change to a row goes through one of them, as the tables'
comments ask; operators' reads (a job, the listing, the settings, the
schedules) select from the tables directly. Each statement is a named query in
`queue.sql`; this module names their arguments and turns their rows into values.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID

from psycopg.types.json import Jsonb

from lib.db import Database
from lib.jsonb import JsonText
from lib.settings import RETENTION_DAYS
from lib.sql import load_queries

QUERIES = load_queries(__file__, "queue.sql")

if TYPE_CHECKING:
    from lib.job_views import JobDetailJson, JobSummaryJson

DEFAULT_MAX_ATTEMPTS = 5
CLEANUP_BATCH_SIZE = 1000
CLEANUP_MAX_BATCHES = 50


class ClaimedJob(NamedTuple):
    """A job this worker holds a lease on. The lease token fences every finish.

    The payload arrives as JSON text and is decoded when the handler asks for it:
    a claim of ten large payloads then holds ten strings, not ten object trees.
    """

    id: UUID
    task_type: str
    payload_json: str
    attempts: int
    max_attempts: int
    lease_token: UUID
    run_at: datetime
    lease_expires_at: datetime

    @property
    def payload(self) -> Any:
        return json.loads(self.payload_json)


class JobState(NamedTuple):
    """A job's state right after a finish."""

    id: UUID
    status: str
    attempts: int
    max_attempts: int
    run_at: datetime
    last_error: str | None


class Enqueued(NamedTuple):
    job_id: UUID
    deduplicated: bool


class InvocationStart(NamedTuple):
    invocation_id: int
    processing_enabled: bool
    paused_reason: str | None
    scheduled: tuple[str, ...] = ()  # schedules that enqueued (or found live) a job in this invocation


class InvocationSummary(NamedTuple):
    """How an invocation ended, for its record in job_queue_invocations."""

    status: str  # completed | paused | failed
    claimed: int = 0
    processed: int = 0
    succeeded: int = 0  # recorded before the closing statement, which adds the held successes it records
    failed: int = 0
    released: int = 0
    error: str | None = None


class Admission(NamedTuple):
    """The answer to a follow-up invocation's request to run (fan-out)."""

    admitted: bool
    reason: str | None
    live_invocations: int


class Transition(NamedTuple):
    """The answer to cancel or retry: `changed` is false when the transition was impossible."""

    id: UUID
    status: str
    previous_status: str
    changed: bool
    duplicate_of: UUID | None = None


class Deletion(NamedTuple):
    """The answer to delete: `deleted` is false when the job is processing (then `status` says so)."""

    id: UUID
    task_type: str
    status: str
    deleted: bool


class QueueSettings(NamedTuple):
    processing_enabled: bool
    paused_reason: str | None
    updated_at: datetime


def _state(row: dict[str, Any] | None) -> JobState | None:
    return JobState(**row) if row else None


def _sent_as_is(text: Any) -> str:
    return str(text)


def _payload(payload: Any) -> Jsonb:
    return Jsonb(payload if payload is not None else {})


def _successes(finished: Sequence[tuple[ClaimedJob, Any]]) -> dict[str, Any]:
    """The parallel arrays the batch-success functions take: ids, outputs, lease tokens."""
    return {
        "ids": [job.id for job, _ in finished],
        "outputs": [_output(output) for _, output in finished],
        "lease_tokens": [job.lease_token for job, _ in finished],
    }


def _output(value: Any) -> Jsonb | None:
    """A job's output for a jsonb parameter; None (SQL NULL) when the handler returned nothing."""
    if value is None:
        return None
    if isinstance(value, JsonText):  # checked and serialised already (lib.jsonb.storable_json)
        return Jsonb(value, dumps=_sent_as_is)
    return Jsonb(value)


class Queue:
    """The queue as seen through one database connection."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- enqueue -------------------------------------------------------------

    def enqueue(
        self,
        task_type: str,
        payload: Any = None,
        *,
        run_at: datetime | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> UUID:
        """Insert a new job, always (the seed's four-argument call)."""
        row = self.db.fetchone(
            QUERIES["enqueue"],
            {"task_type": task_type, "payload": _payload(payload), "run_at": run_at, "max_attempts": max_attempts},
        )
        assert row is not None
        job_id: UUID = row["id"]
        return job_id

    def enqueue_unique(
        self,
        task_type: str,
        payload: Any = None,
        *,
        run_at: datetime | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> Enqueued:
        """Insert a job unless an equal one (same type and payload) is pending or processing."""
        row = self.db.fetchone(
            QUERIES["enqueue_unique"],
            {"task_type": task_type, "payload": _payload(payload), "run_at": run_at, "max_attempts": max_attempts},
        )
        assert row is not None
        return Enqueued(job_id=row["job_id"], deduplicated=row["deduplicated"])

    def enqueue_batch(
        self,
        task_type: str,
        payloads: Sequence[Any],
        *,
        run_at: datetime | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> list[UUID]:
        """Insert many jobs of one type in one statement."""
        rows = self.db.fetchall(
            QUERIES["enqueue_batch"],
            {
                "task_type": task_type,
                "payloads": [_payload(p) for p in payloads],
                "run_at": run_at,
                "max_attempts": max_attempts,
            },
        )
        return [r["id"] for r in rows]

    # -- the worker's calls ----------------------------------------------------

    def begin_invocation(
        self, trigger_source: str, limit: int, forced: bool, lease: timedelta, idempotency_key: UUID | None = None
    ) -> tuple[InvocationStart, list[ClaimedJob]]:
        """Enqueue the due schedules' jobs, record a worker invocation, read the pause switch and claim,
        in one round trip.

        Schedules are evaluated even while paused (not again by a repeat). Claims
        nothing while processing is paused unless `forced`; such an invocation is
        recorded as paused and already closed. With an `idempotency_key` the call is
        safe to repeat: a repeat answers the first call's invocation and the jobs it
        still holds, so a reply lost on a broken connection strands nothing.
        """
        rows = self.db.fetchall(
            QUERIES["begin_invocation"],
            {
                "trigger_source": trigger_source,
                "limit": limit,
                "forced": forced,
                "lease": lease,
                "idempotency_key": idempotency_key,
            },
            repeatable=idempotency_key is not None,
        )
        first = rows[0]
        invocation = InvocationStart(
            first["invocation_id"],
            first["processing_enabled"],
            first["paused_reason"],
            tuple(first["scheduled"] or ()),
        )
        jobs = [
            ClaimedJob(
                row["id"],
                row["task_type"],
                row["payload_json"],
                row["attempts"],
                row["max_attempts"],
                row["lease_token"],
                row["run_at"],
                row["lease_expires_at"],
            )
            for row in rows
            if row["id"] is not None
        ]
        return invocation, jobs

    def complete_invocation(
        self, invocation_id: int, summary: InvocationSummary, successes: Sequence[tuple[ClaimedJob, Any]] = ()
    ) -> dict[UUID, JobState]:
        """Record the held successes (fenced) and close the invocation, in one round trip.

        `summary.succeeded` counts successes recorded earlier; the ones passed here
        are added as they are recorded. A job missing from the result lost its lease.
        """
        rows = self.db.fetchall(
            QUERIES["complete_invocation"],
            {"invocation_id": invocation_id, **summary._asdict(), **_successes(successes)},
        )
        return {row["id"]: JobState(**row) for row in rows}

    def claim(self, limit: int, lease: timedelta) -> list[ClaimedJob]:
        rows = self.db.fetchall(QUERIES["claim"], {"limit": limit, "lease": lease})
        return [ClaimedJob(**row) for row in rows]

    def mark_succeeded(self, job: ClaimedJob, output: Any = None) -> JobState | None:
        """Finish a job as succeeded; None when the lease was lost (cancelled or taken over)."""
        return _state(
            self.db.fetchone(
                QUERIES["mark_succeeded"], {"id": job.id, "output": _output(output), "lease_token": job.lease_token}
            )
        )

    def mark_succeeded_batch(self, finished: Sequence[tuple[ClaimedJob, Any]]) -> dict[UUID, JobState]:
        """Finish many jobs as succeeded in one statement; a job whose lease was lost is absent from the result."""
        if not finished:
            return {}
        rows = self.db.fetchall(QUERIES["mark_succeeded_batch"], _successes(finished))
        return {row["id"]: JobState(**row) for row in rows}

    def mark_failed(self, job: ClaimedJob, error: str, retry_in: timedelta | None) -> JobState | None:
        """Fail a job, scheduling a retry after `retry_in` unless it is None; None when the lease was lost."""
        return _state(
            self.db.fetchone(
                QUERIES["mark_failed"],
                {"id": job.id, "error": error, "retry_in": retry_in, "lease_token": job.lease_token},
            )
        )

    def release(self, jobs: Sequence[ClaimedJob], *, delay: timedelta | None = None) -> int:
        """Hand claimed, unstarted jobs back, their attempt not spent; due again after `delay` (None: as before)."""
        if not jobs:
            return 0
        row = self.db.fetchone(
            QUERIES["release"],
            {"ids": [j.id for j in jobs], "lease_tokens": [j.lease_token for j in jobs], "delay": delay},
        )
        assert row is not None
        return int(row["released"])

    # -- fan-out (docs/throughput.md) --------------------------------------------

    def fanout_admit(
        self, max_parallel: int, generation: int, max_generations: int, chain_started_at: datetime, max_chain: timedelta
    ) -> Admission:
        """Admit a follow-up invocation under the bound; call inside the transaction that then begins it."""
        row = self.db.fetchone(
            QUERIES["fanout_admit"],
            {
                "max_parallel": max_parallel,
                "generation": generation,
                "max_generations": max_generations,
                "chain_started_at": chain_started_at,
                "max_chain": max_chain,
            },
        )
        assert row is not None
        return Admission(**row)

    def fanout_slots(self, max_parallel: int) -> int:
        """How many follow-ups to start now: 0 while paused or with no due job left, else the free places."""
        row = self.db.fetchone(QUERIES["fanout_slots"], {"max_parallel": max_parallel})
        assert row is not None
        return int(row["slots"])

    def status_of(self, job_id: UUID) -> str | None:
        row = self.db.fetchone(QUERIES["job_status"], {"id": job_id})
        return row["status"] if row else None

    # -- operator actions ----------------------------------------------------

    def cancel(self, job_id: UUID, reason: str | None = None) -> Transition | None:
        row = self.db.fetchone(QUERIES["cancel"], {"id": job_id, "reason": reason})
        return Transition(**row) if row else None

    def retry(self, job_id: UUID) -> Transition | None:
        row = self.db.fetchone(QUERIES["retry"], {"id": job_id})
        return Transition(**row) if row else None

    def delete(self, job_id: UUID) -> Deletion | None:
        """Delete a job unless it is processing; None when no job has this id."""
        row = self.db.fetchone(QUERIES["delete"], {"id": job_id})
        return Deletion(**row) if row else None

    def settings(self) -> QueueSettings:
        row = self.db.fetchone(QUERIES["settings"])
        assert row is not None, "job_queue_settings has lost its row; re-run the migrations"
        return QueueSettings(**row)

    def set_processing(self, enabled: bool, reason: str | None = None) -> QueueSettings:
        row = self.db.fetchone(QUERIES["set_processing"], {"enabled": enabled, "reason": reason})
        assert row is not None, "job_queue_settings has lost its row; re-run the migrations"
        return QueueSettings(**row)

    def cleanup(
        self,
        older_than: timedelta = timedelta(days=RETENTION_DAYS),
        batch_size: int = CLEANUP_BATCH_SIZE,
        max_batches: int = CLEANUP_MAX_BATCHES,
    ) -> int:
        """Delete finished jobs and worker invocations older than `older_than`; at most
        `batch_size * max_batches` rows of each table per call."""
        row = self.db.fetchone(
            QUERIES["cleanup"], {"older_than": older_than, "batch_size": batch_size, "max_batches": max_batches}
        )
        assert row is not None
        return int(row["removed"])

    # -- schedules ---------------------------------------------------------------
    # Evaluated by `begin_invocation`; these are the operators' calls.

    def list_schedules(self) -> list[Schedule]:
        """Every schedule, by name, with its next and last run."""
        return [Schedule(**row) for row in self.db.fetchall(QUERIES["schedules"], {"name": None})]

    def get_schedule(self, name: str) -> Schedule | None:
        row = self.db.fetchone(QUERIES["schedules"], {"name": name})
        return Schedule(**row) if row else None

    def save_schedule(
        self,
        name: str,
        *,
        task_type: str | None = None,
        payload: dict[str, Any] | None = None,
        cron: str | None = None,
        enabled: bool | None = None,
    ) -> Schedule | None:
        """Create a schedule (`task_type` and `cron` given, the name new) or change the given fields of one.

        A new cron expression, or enabling a disabled schedule, sets its next slot
        from now. None when no schedule has this name and no task type was given.
        Validate `cron` with `cron_problem` first: the table refuses an invalid one.
        """
        row = self.db.fetchone(
            QUERIES["save_schedule"],
            {
                "name": name,
                "task_type": task_type,
                "payload": Jsonb(payload) if payload is not None else None,
                "cron": cron,
                "enabled": enabled,
            },
        )
        return Schedule(**row) if row else None

    def run_schedule_now(self, name: str) -> Enqueued | None:
        """Enqueue a schedule's job now, deduplicated; its next slot stays. None for an unknown name."""
        row = self.db.fetchone(QUERIES["run_schedule_now"], {"name": name})
        return Enqueued(job_id=row["job_id"], deduplicated=row["deduplicated"]) if row else None

    def cron_problem(self, cron: str) -> str | None:
        """None when `cron` is a valid five-field expression, else what is wrong with it.

        The database's `job_queue_cron_next` is the one cron evaluator; Python asks it.
        """
        row = self.db.fetchone(QUERIES["cron_problem"], {"cron": cron})
        assert row is not None
        problem: str | None = row["problem"]
        return problem

    def cron_next(self, cron: str, after: datetime) -> datetime:
        """The first slot of `cron` strictly after `after` (UTC)."""
        row = self.db.fetchone(QUERIES["cron_next"], {"cron": cron, "after": after})
        assert row is not None
        slot: datetime = row["next"]
        return slot

    # -- what operators read ---------------------------------------------------
    # For the admin endpoints and the operator CLI: listing, one job in full,
    # and the health report.

    def list_jobs(
        self,
        *,
        status: str | None = None,
        task_type: str | None = None,
        limit: int = 50,
        after: JobCursor | None = None,
    ) -> JobPage:
        """Jobs newest first, optionally of one status and/or task type, after a keyset cursor."""
        rows = self.db.fetchall(
            QUERIES["list_jobs"],
            {
                "status": status,
                "task_type": task_type,
                "after_created_at": after.created_at if after else None,
                "after_id": after.id if after else None,
                "limit": limit + 1,
            },
        )
        from lib.job_views import JobSummaryJson  # the admin's view: kept off the worker's import path

        jobs = [JobSummaryJson.model_validate(row) for row in rows[:limit]]
        next_cursor = JobCursor(rows[limit - 1]["created_at"], rows[limit - 1]["id"]) if len(rows) > limit else None
        return JobPage(jobs=jobs, next_cursor=next_cursor)

    def get_job(self, job_id: UUID) -> JobDetailJson | None:
        """One job in full, or None when no job has this id."""
        row = self.db.fetchone(QUERIES["get_job"], {"id": job_id})
        from lib.job_views import JobDetailJson  # the admin's view: kept off the worker's import path

        return JobDetailJson.model_validate(row) if row else None

    def health(
        self, recent: int, overdue_after_seconds: float, list_limit: int
    ) -> tuple[HealthSnapshot, HealthDetails]:
        """Counts, ages and recent history (`job_queue_health_snapshot`) and the dashboard's bounded lists
        (`job_queue_health_details`), in one round trip."""
        row = self.db.fetchone(
            QUERIES["health"],
            {"recent": recent, "overdue_after_seconds": overdue_after_seconds, "list_limit": list_limit},
        )
        assert row is not None, "job_queue_settings has lost its row; re-run the migrations"
        details = HealthDetails(
            stuck=row.pop("details_stuck"),
            overdue=row.pop("details_overdue"),
            schedules=row.pop("details_schedules"),
            last_sync_run=row.pop("details_last_sync_run"),
        )
        return HealthSnapshot(**row), details


class Schedule(NamedTuple):
    """A recurring job: `task_type` with `payload`, enqueued at each slot of `cron` (UTC)."""

    name: str
    task_type: str
    payload: dict[str, Any]
    cron: str
    enabled: bool
    next_run_at: datetime
    last_enqueued_at: datetime | None
    last_job_id: UUID | None
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        """The admin API's and the health report's camelCase form."""
        return {
            "name": self.name,
            "taskType": self.task_type,
            "payload": self.payload,
            "cron": self.cron,
            "enabled": self.enabled,
            "nextRunAt": self.next_run_at.isoformat(),
            "lastEnqueuedAt": self.last_enqueued_at.isoformat() if self.last_enqueued_at else None,
            "lastJobId": str(self.last_job_id) if self.last_job_id else None,
        }


class JobCursor(NamedTuple):
    """A position in the newest-first listing: the last job seen."""

    created_at: datetime
    id: UUID


class JobPage(NamedTuple):
    jobs: list[JobSummaryJson]
    next_cursor: JobCursor | None


class HealthSnapshot(NamedTuple):
    """What `job_queue_health_snapshot` reports; ages are measured by the database's clock."""

    checked_at: datetime
    processing_enabled: bool
    paused_reason: str | None
    settings_updated_at: datetime
    pending: int
    processing: int
    succeeded: int
    failed: int
    cancelled: int
    due_pending: int
    oldest_due_pending_age_seconds: float | None
    stuck_jobs: int
    failed_last_24h: int
    last_run_at: datetime | None
    last_run_age_seconds: float | None
    recent_runs: list[dict[str, Any]]
    recent_jobs: list[dict[str, Any]]


class HealthDetails(NamedTuple):
    """The dashboard's bounded lists, already in the response's camelCase shape."""

    stuck: list[dict[str, Any]]
    overdue: list[dict[str, Any]]
    schedules: list[dict[str, Any]]
    last_sync_run: dict[str, Any] | None


NO_HEALTH_DETAILS = HealthDetails(stuck=[], overdue=[], schedules=[], last_sync_run=None)
