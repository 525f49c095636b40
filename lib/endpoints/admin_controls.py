"""The dashboard's queue controls: the pause switch, the job list and detail, retry, cancel and delete.

- `POST /api/admin/job-queue/toggle` `{"enabled", "reason"?}`
- `GET  /api/admin/job-queue/jobs` `?status&taskType&limit&cursor` or `?id=<uuid>`
- `POST /api/admin/job-queue/actions` `{"action": "retry"|"cancel"|"delete", "jobId"}`

Each transition is one SQL function (`job_queue_set_processing`, `job_queue_retry`,
`job_queue_cancel`, `job_queue_delete`), which locks the row and decides; this
module only maps its answer to HTTP: no job → 404, impossible → 409 with the
job's current status.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lib.auth.admin import AdminSession, admin_connection
from lib.errors import Conflict, InvalidRequest, NotFound
from lib.http import Request, Response, ResponseBody, model_response
from lib.job_status import JobStatusField
from lib.job_views import JobDetailJson, JobSummaryJson
from lib.jsonnames import CamelModel
from lib.kick import kick_worker
from lib.observability import log
from lib.queue import Deletion, JobCursor, Queue, Transition
from lib.settings import get_settings

MAX_PAGE = 100
DEFAULT_PAGE = 50


# -- the pause switch --------------------------------------------------------------


class ToggleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool
    reason: str | None = Field(default=None, max_length=500, description="shown while paused; dropped on resume")


class ProcessingState(ResponseBody):
    """The pause switch after the change."""

    processing_enabled: bool
    paused_reason: str | None
    updated_at: datetime


def toggle_processing(request: Request) -> Response:
    settings = get_settings()
    with admin_connection(request, settings) as (db, admin):
        body = request.input(ToggleBody)
        state = Queue(db).set_processing(body.enabled, body.reason)
    log(
        "admin.processing_toggled",
        processing_enabled=state.processing_enabled,
        paused_reason=state.paused_reason,
        user_id=str(admin.user_id),
    )
    return model_response(
        ProcessingState,
        {
            "processingEnabled": state.processing_enabled,
            "pausedReason": state.paused_reason,
            "updatedAt": state.updated_at.isoformat(),
        },
    )


# -- list and detail -----------------------------------------------------------------


def encode_cursor(cursor: JobCursor) -> str:
    """An opaque keyset position: the last listed job's creation time and id."""
    raw = f"{cursor.created_at.isoformat()}|{cursor.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str) -> JobCursor:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        created_at, _, job_id = raw.partition("|")
        cursor = JobCursor(datetime.fromisoformat(created_at), UUID(job_id))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        cursor = None
    if cursor is None or cursor.created_at.tzinfo is None:
        raise InvalidRequest(
            "The cursor is malformed; pass back the nextCursor of a previous page unchanged.",
            details=[{"field": "cursor", "message": "not a cursor from this endpoint"}],
        )
    return cursor


class JobsQuery(CamelModel):
    model_config = ConfigDict(extra="forbid")

    id: UUID | None = Field(default=None, description="one job in full; not combined with the list parameters")
    status: JobStatusField | None = None
    task_type: str | None = Field(default=None, min_length=1, max_length=200)
    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE)
    cursor: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _id_alone(self) -> JobsQuery:
        if self.id is not None and len(self.model_fields_set) > 1:
            raise ValueError("id returns one job; do not combine it with status, taskType, limit or cursor")
        return self


class JobPage(ResponseBody):
    """Newest first; pass nextCursor back as cursor for the next page (null: no more)."""

    jobs: list[JobSummaryJson]
    next_cursor: str | None


class OneJob(ResponseBody):
    """`?id=`: one job in full."""

    job: JobDetailJson


def list_jobs(request: Request) -> Response:
    settings = get_settings()
    with admin_connection(request, settings) as (db, _admin):
        query = request.input(JobsQuery)
        queue = Queue(db)
        if query.id is not None:
            job = queue.get_job(query.id)
            if job is None:
                raise NotFound(f"No job has id {query.id}.")
            return model_response(OneJob, {"job": job.to_json()})
        page = queue.list_jobs(
            status=query.status,
            task_type=query.task_type,
            limit=query.limit,
            after=decode_cursor(query.cursor) if query.cursor else None,
        )
    return model_response(
        JobPage,
        {
            "jobs": [job.to_json() for job in page.jobs],
            "nextCursor": encode_cursor(page.next_cursor) if page.next_cursor else None,
        },
    )


# -- retry, cancel and delete ----------------------------------------------------------


class ActionBody(CamelModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["retry", "cancel", "delete"]
    job_id: UUID


class ActionResult(ResponseBody):
    """The transition made."""

    success: Literal[True]
    action: str = Field(description="the action of the request")
    job_id: UUID
    status: str = Field(description="the job's status now: pending, cancelled, or deleted")
    previous_status: JobStatusField | None


def _refusal(action: str, transition: Transition) -> Conflict:
    job_id = str(transition.id)
    if transition.duplicate_of is not None:
        return Conflict(
            f"Job {job_id} cannot be retried: an equal job ({transition.duplicate_of}) is already pending or "
            "processing.",
            jobId=job_id,
            status=transition.status,
            duplicateOf=str(transition.duplicate_of),
        )
    allowed = (
        "pending or processing jobs can be cancelled"
        if action == "cancel"
        else ("failed, cancelled or pending jobs can be retried")
    )
    return Conflict(f"Job {job_id} is {transition.status}; only {allowed}.", jobId=job_id, status=transition.status)


def _delete(body: ActionBody, deletion: Deletion | None, admin: AdminSession) -> Response:
    if deletion is None:
        raise NotFound(f"No job has id {body.job_id}.")
    job_id = str(deletion.id)
    log(
        "admin.job_deleted" if deletion.deleted else "admin.job_delete_refused",
        job_id=job_id,
        task_type=deletion.task_type,
        status=deletion.status,
        user_id=str(admin.user_id),
    )
    if not deletion.deleted:
        raise Conflict(
            f"Job {job_id} is {deletion.status}; a processing job cannot be deleted (cancel it first, "
            "or wait for it to finish).",
            jobId=job_id,
            status=deletion.status,
        )
    return model_response(
        ActionResult,
        {"success": True, "action": "delete", "jobId": job_id, "status": "deleted", "previousStatus": deletion.status},
    )


def job_action(request: Request) -> Response:
    settings = get_settings()
    with admin_connection(request, settings) as (db, admin):
        body = request.input(ActionBody)
        queue = Queue(db)
        deletion: Deletion | None = None
        transition: Transition | None = None
        if body.action == "delete":
            deletion = queue.delete(body.job_id)
        else:
            transition = queue.retry(body.job_id) if body.action == "retry" else queue.cancel(body.job_id)
    if body.action == "delete":
        return _delete(body, deletion, admin)
    if transition is None:
        raise NotFound(f"No job has id {body.job_id}.")
    log(
        "admin.job_action",
        action=body.action,
        job_id=str(body.job_id),
        changed=transition.changed,
        status=transition.status,
        previous_status=transition.previous_status,
        user_id=str(admin.user_id),
    )
    if not transition.changed:
        raise _refusal(body.action, transition)
    if body.action == "retry":
        kick_worker(settings)  # pending and due now: start it now rather than at the next cron tick
    return model_response(
        ActionResult,
        {
            "success": True,
            "action": body.action,
            "jobId": str(transition.id),
            "status": transition.status,
            "previousStatus": transition.previous_status,
        },
    )
