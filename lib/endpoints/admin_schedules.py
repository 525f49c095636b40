"""`GET|POST /api/admin/job-queue/schedules`: the queue's recurring jobs, listed and changed by an admin.

- `GET` → `{"schedules": [{name, taskType, payload, cron, enabled, nextRunAt, lastEnqueuedAt, lastJobId}]}`
- `POST {name, enabled?, cron?, payload?}` changes a schedule; with `taskType`
  too, creates it when the name is new (201). Unknown name without `taskType`
  → 404.

The cron expression is checked by the database's own evaluator
(`job_queue_cron_problem`, the function the worker runs), and the payload by
the task's payload model, stored with every default filled in — the form the
admin triggers store, so a scheduled job dedupes against an equal trigger.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from lib.auth.admin import admin_connection
from lib.errors import Conflict, InvalidRequest, NotFound
from lib.http import Request, Response, ResponseBody, model_response
from lib.jobs.registry import PayloadRejected, stored_payload
from lib.jsonnames import CamelModel
from lib.observability import log
from lib.queue import Queue
from lib.settings import get_settings
from lib.validation import within

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.:-]{0,99}$"


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SaveBody(CamelModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="lower-case letters, digits and _ . : - (at most 100)")
    task_type: str | None = Field(default=None, min_length=1, max_length=200, description="only to create a schedule")
    enabled: StrictBool | None = None
    cron: str | None = Field(default=None, max_length=200, description="five fields, UTC")
    payload: dict[str, Any] | None = None


class ScheduleJson(ResponseBody):
    """A recurring job: what it enqueues, when (five-field cron, UTC), and its last enqueue."""

    name: str
    task_type: str
    payload: Any
    cron: str
    enabled: bool
    next_run_at: datetime
    last_enqueued_at: datetime | None
    last_job_id: str | None


class ScheduleList(ResponseBody):
    schedules: list[ScheduleJson]


class SavedSchedule(ResponseBody):
    """The schedule after the change; `created` when it is new (HTTP 201)."""

    schedule: ScheduleJson
    created: bool


def list_schedules(request: Request) -> Response:
    settings = get_settings()
    with admin_connection(request, settings) as (db, _admin):
        request.input(ListQuery)
        schedules = Queue(db).list_schedules()
    return model_response(ScheduleList, {"schedules": [s.to_json() for s in schedules]})


def _invalid(field: str, message: str) -> InvalidRequest:
    return InvalidRequest("The schedule has invalid fields.", details=[{"field": field, "message": message}])


def save_schedule(request: Request) -> Response:
    settings = get_settings()
    with admin_connection(request, settings) as (db, admin):
        body = request.input(SaveBody)
        queue = Queue(db)
        existing = queue.get_schedule(body.name)
        if existing is None and body.task_type is None:
            raise NotFound(f"No schedule is named {body.name!r}; send taskType (and cron) to create it.")
        if existing is not None and body.task_type not in (None, existing.task_type):
            raise Conflict(
                f"Schedule {body.name!r} runs {existing.task_type}; its task type cannot change. "
                "Create a schedule of another name instead.",
                taskType=existing.task_type,
            )
        task_type = existing.task_type if existing is not None else body.task_type
        assert task_type is not None
        if existing is None and body.cron is None:
            raise _invalid("cron", "a new schedule needs a cron expression (five fields, UTC)")
        if body.cron is not None:
            problem = queue.cron_problem(body.cron)
            if problem is not None:
                raise _invalid("cron", problem)
        payload = None
        if body.payload is not None or existing is None:
            spec = request.registry.get(task_type)
            if spec is None:
                raise _invalid(
                    "taskType",
                    f"unknown task type {task_type!r}; the worker runs: " + ", ".join(request.registry.task_types()),
                )
            try:
                payload = stored_payload(spec, body.payload or {})
            except PayloadRejected as exc:
                raise InvalidRequest(
                    f"The payload is not valid for {task_type}.",
                    details=within("payload", exc.problems),
                ) from None
        saved = queue.save_schedule(
            body.name, task_type=body.task_type, payload=payload, cron=body.cron, enabled=body.enabled
        )
    if saved is None:  # deleted between the read and the write
        raise NotFound(f"No schedule is named {body.name!r}.")
    log(
        "admin.schedule_saved",
        name=saved.name,
        created=existing is None,
        enabled=saved.enabled,
        cron=saved.cron,
        user_id=str(admin.user_id),
    )
    return model_response(
        SavedSchedule, {"schedule": saved.to_json(), "created": existing is None}, 201 if existing is None else 200
    )
