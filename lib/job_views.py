"""A job as the operators see it: the one list of a job's fields, in a summary and a full view.

    JobSummaryJson   # a job in a list: everything but its output (`Queue.list_jobs`)
    JobDetailJson    # a job in full, the lease token left out (`Queue.get_job`)
    JobColumns       # the fields both show; alone in the health report's recent jobs

Built from a `job_queue` row by column name (`JobDetailJson.model_validate(row)`);
`to_json()` is the admin API's camelCase body, times in ISO 8601 as `datetime.isoformat`
writes them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import ConfigDict

from lib.job_status import JobStatus, JobStatusField
from lib.jsonnames import CamelModel


class JobColumns(CamelModel):
    """What every view of a job shows."""

    model_config = ConfigDict(extra="allow", validate_by_name=True)

    id: UUID
    task_type: str
    status: JobStatusField
    attempts: int
    max_attempts: int
    last_error: str | None
    run_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None
    completed_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        """The admin API's body for this job (camelCase keys); payload and output as stored."""
        return {key: _json_value(value) for key, value in self.model_dump().items()}


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, JobStatus):
        return value.value
    return value


class JobSummaryJson(JobColumns):
    """A job in a list: no output, lastError cut to 500 characters."""

    payload: Any


class JobDetailJson(JobSummaryJson):
    """A job in full (the lease token is never shown)."""

    output: Any
    dedupe_key: str | None
    locked_at: datetime | None
    lease_expires_at: datetime | None
