"""Stage jobs in any state for a test, through real SQL: `JobFactory(sql)` (conftest's `job_factory`).

    jobs.add("test_noop")                                       # pending, due now
    jobs.add("test_noop", due=False)                            # pending, due in a day
    jobs.add("test_boom", "failed", attempts=3, last_error="boom")
    jobs.stage(job_id, "processing", lease=timedelta(minutes=-1))   # held by a worker that died
    jobs.stage(job_id, due=True)                                # skip a retry's backoff
    jobs.stage(job_id, due_ago=timedelta(hours=1))              # waiting for an hour
    jobs.stage(None, completed_ago=timedelta(days=40), among=FINISHED)  # every finished job, aged

A job is created by the queue's own `job_queue_enqueue`; a state is then written
with the columns the queue's functions write for it, so a staged job looks like
one the queue put there:
- pending: no lease, not locked, not completed;
- processing: a fresh lease token, locked `locked_ago` ago (default now), its lease
  ending `lease` from now (default 5 minutes; negative: already expired);
- succeeded, failed, cancelled: completed `completed_ago` ago (default now), no lease.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from lib.job_status import JobStatus

FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
LIVE = (JobStatus.PENDING, JobStatus.PROCESSING)
DEFAULT_LEASE = timedelta(minutes=5)
NOT_DUE = timedelta(days=1)

_UNSET: Any = object()


class JobFactory:
    def __init__(self, sql: psycopg.Connection[Any]) -> None:
        self.sql = sql

    def add(
        self,
        task_type: str = "test_noop",
        status: JobStatus | str = JobStatus.PENDING,
        *,
        payload: Any = None,
        due: bool = True,
        max_attempts: int = 5,
        **state: Any,
    ) -> str:
        """A new job (its id, as text) in `status`; `state` as `stage` takes it."""
        row = self.sql.execute(
            "select job_queue_enqueue(%s, %s, now() + %s, %s) as id",
            (task_type, Jsonb(payload if payload is not None else {}), timedelta(0) if due else NOT_DUE, max_attempts),
        ).fetchone()
        assert row is not None
        job_id = str(row["id"] if isinstance(row, dict) else row[0])
        if JobStatus(status) is not JobStatus.PENDING or state:
            self.stage(job_id, status, **state)
        return job_id

    def stage(
        self,
        job_id: UUID | str | None,
        status: JobStatus | str | None = None,
        *,
        among: Collection[JobStatus | str] | None = None,
        due: bool | None = None,
        due_ago: timedelta | None = None,
        attempts: int | None = None,
        last_error: str | None = _UNSET,
        payload: Any = _UNSET,
        output: Any = _UNSET,
        lease: timedelta | None = None,
        locked_ago: timedelta | None = None,
        completed_ago: timedelta | None = None,
        created_at: datetime | str | None = None,
    ) -> int:
        """Put a job (or, with `job_id` None, every job; `among`: of these statuses) into a state.

        Returns how many jobs changed. Only what is given changes, plus the columns
        `status` implies (see the module's docstring).
        """
        sets: list[str] = []
        params: list[Any] = []

        def put(column: str, expression: str = "%s", *values: Any) -> None:
            sets.append(f"{column} = {expression}")
            params.extend(values)

        if status is not None:
            status = JobStatus(status)
            put("status", "%s", status.value)
            if status is JobStatus.PENDING:
                for column in ("lease_token", "locked_at", "lease_expires_at", "completed_at"):
                    put(column, "null")
            elif status is JobStatus.PROCESSING:
                put("lease_token", "gen_random_uuid()")
                put("locked_at", "now() - %s", locked_ago or timedelta(0))
                put("lease_expires_at", "now() + %s", lease if lease is not None else DEFAULT_LEASE)
                put("completed_at", "null")
            else:
                put("lease_token", "null")
                put("lease_expires_at", "null")
                put("completed_at", "now() - %s", completed_ago or timedelta(0))
        # The columns given by a value that may be absent (None: leave the column as it is).
        optional: list[tuple[str, str, Any]] = [
            ("run_at", "now() + %s", None if due is None else (timedelta(0) if due else NOT_DUE)),
            ("run_at", "now() - %s", due_ago),
            ("attempts", "%s", attempts),
            ("created_at", "%s::timestamptz", created_at),
        ]
        if status is None:  # a lease, lock or completion time of its own, the status kept
            optional += [
                ("lease_expires_at", "now() + %s", lease),
                ("locked_at", "now() - %s", locked_ago),
                ("completed_at", "now() - %s", completed_ago),
            ]
        for column, expression, value in optional:
            if value is not None:
                put(column, expression, value)
        # The columns that may be set to null: _UNSET leaves them as they are.
        for column, value in (("last_error", last_error), ("payload", payload), ("output", output)):
            if value is not _UNSET:
                put(column, "%s", value if value is None or column == "last_error" else Jsonb(value))
        assert sets, "nothing to stage"
        where, where_params = ["true"], []
        if job_id is not None:
            where.append("id = %s")
            where_params.append(str(job_id))
        if among is not None:
            where.append("status = any(%s)")
            where_params.append([JobStatus(s).value for s in among])
        cursor = self.sql.execute(
            f"update job_queue set {', '.join(sets)} where {' and '.join(where)}",
            (*params, *where_params),
        )
        return cursor.rowcount
