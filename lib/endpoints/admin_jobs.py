"""The dashboard's job tools: run the worker now, and create a job of any registered task type.

- `POST /api/admin/jobs/run-worker` `{"limit"?, "force"?}`: one worker invocation
  in this request, answered with the worker's own report (as `/api/jobs/run`) and
  recorded in the invocation history (job_queue_invocations) with trigger source `admin_manual`.
- `GET  /api/admin/jobs/create`: the registered task types, each with its payload's
  JSON schema and default payload, for the page's task type picker.
- `POST /api/admin/jobs/create` `{"taskType", "payload"?, "runAt"?, "maxAttempts"?}`:
  the payload is validated by the task type's payload model and stored with every
  default filled in, as the trigger endpoints store theirs; a job due now kicks
  the worker (`lib.kick`), as the triggers do.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from lib.auth.admin import admin_connection
from lib.endpoints.worker import RunParams, report_model
from lib.errors import InvalidRequest
from lib.http import Request, Response, ResponseBody, model_response
from lib.jobs.registry import PayloadRejected, TaskRegistry, TaskSpec, stored_payload
from lib.jsonnames import CamelModel
from lib.kick import kick_worker
from lib.observability import log
from lib.queue import DEFAULT_MAX_ATTEMPTS, Queue
from lib.settings import Settings, get_settings
from lib.validation import within
from lib.worker import Worker

ADMIN_TRIGGER_SOURCE = "admin_manual"

# The admin functions run with vercel.json's `api/admin/**/*.py` maxDuration (30 s),
# not the worker's 300 s: an invocation started here budgets for that, so it
# stops starting jobs (and long handlers hand over to a continuation) in time.
ADMIN_MAX_DURATION_SECONDS = 30.0
ADMIN_FINISH_MARGIN_SECONDS = 5.0
ADMIN_MIN_JOB_SECONDS = 10.0

MAX_ATTEMPTS_LIMIT = 100


def admin_worker_settings(settings: Settings) -> Settings:
    """The settings with the worker's time budget fitted to an admin function's duration."""
    return settings.model_copy(
        update={
            "worker_max_duration_seconds": min(settings.worker_max_duration_seconds, ADMIN_MAX_DURATION_SECONDS),
            "worker_finish_margin_seconds": min(settings.worker_finish_margin_seconds, ADMIN_FINISH_MARGIN_SECONDS),
            "worker_min_job_seconds": min(settings.worker_min_job_seconds, ADMIN_MIN_JOB_SECONDS),
        }
    )


def run_worker(request: Request) -> Response:
    received_at = time.monotonic()
    settings = get_settings()
    with admin_connection(request, settings) as (db, admin):
        params = request.input(RunParams)
        log("admin.worker_run_requested", limit=params.limit, force=params.force, user_id=str(admin.user_id))
        report = Worker(db, admin_worker_settings(settings), registry=request.registry).drain(
            limit=params.limit, force=params.force, trigger_source=ADMIN_TRIGGER_SOURCE, started_at=received_at
        )
    body = report.to_json()
    return model_response(report_model(body), body)


# -- create --------------------------------------------------------------------------


class CreateBody(CamelModel):
    model_config = ConfigDict(extra="forbid")

    task_type: str = Field(min_length=1, max_length=200)
    payload: dict[str, Any] = Field(default_factory=dict, description="validated by the task type's model")
    run_at: AwareDatetime | None = Field(default=None, description="due time; now when absent")
    max_attempts: Annotated[int, Field(ge=1, le=MAX_ATTEMPTS_LIMIT)] = DEFAULT_MAX_ATTEMPTS


class TaskTypesQuery(BaseModel):
    """No parameters; unknown ones are refused like everywhere else."""

    model_config = ConfigDict(extra="forbid")


class TaskTypeJson(ResponseBody):
    task_type: str
    default_payload: dict[str, Any] | None
    payload_schema: dict[str, Any] = Field(description="the payload model's JSON Schema")


class TaskTypeList(ResponseBody):
    task_types: list[TaskTypeJson]


class CreatedJob(ResponseBody):
    success: bool
    job_id: str


def stored_payload_or_400(spec: TaskSpec, raw: dict[str, Any]) -> dict[str, Any]:
    """The payload as stored (`lib.jobs.registry.stored_payload`: validated, every default filled
    in, camelCase keys — what the triggers and schedules store, so equal jobs dedupe), or a 400
    listing each bad field as `payload.<field>`."""
    try:
        return stored_payload(spec, raw)
    except PayloadRejected as exc:
        raise InvalidRequest(
            f"The payload is not valid for {spec.task_type}.",
            details=within("payload", exc.problems),
        ) from None


def default_payload(spec: TaskSpec) -> dict[str, Any] | None:
    """The stored form of an empty payload, or None when the model has required fields."""
    try:
        return stored_payload(spec, {})
    except PayloadRejected:
        return None


def payload_schema(spec: TaskSpec) -> dict[str, Any]:
    """The payload model's JSON schema, without the fields only its handler writes."""
    schema = spec.payload_model.model_json_schema(by_alias=True)
    public = default_payload(spec)
    properties = schema.get("properties")
    if public is not None and isinstance(properties, dict):
        schema["properties"] = {k: v for k, v in properties.items() if k in public}
    return schema


def _spec(registry: TaskRegistry, task_type: str) -> TaskSpec:
    spec = registry.get(task_type)
    if spec is None:
        known = registry.task_types()
        raise InvalidRequest(
            f"Unknown task type {task_type!r}; registered: {', '.join(known) or 'none'}.",
            details=[{"field": "taskType", "message": f"not a registered task type; one of: {', '.join(known)}"}],
        )
    return spec


def task_type_json(spec: TaskSpec) -> dict[str, Any]:
    """A task type for the page's picker: its payload schema and, when every field has one, its default payload."""
    return {"taskType": spec.task_type, "defaultPayload": default_payload(spec), "payloadSchema": payload_schema(spec)}


def list_task_types(request: Request) -> Response:
    registry = request.registry
    settings = get_settings()
    with admin_connection(request, settings):
        request.input(TaskTypesQuery)
    specs = [spec for name in registry.task_types() if (spec := registry.get(name)) is not None]
    return model_response(TaskTypeList, {"taskTypes": [task_type_json(spec) for spec in specs]})


def create_job(request: Request) -> Response:
    settings = get_settings()
    with admin_connection(request, settings) as (db, admin):
        body = request.input(CreateBody)
        spec = _spec(request.registry, body.task_type)
        payload = stored_payload_or_400(spec, body.payload)
        job_id = Queue(db).enqueue(spec.task_type, payload, run_at=body.run_at, max_attempts=body.max_attempts)
    if body.run_at is None or body.run_at <= datetime.now(UTC):
        kick_worker(settings)  # committed and due: start the worker now rather than at the next cron tick
    log(
        "admin.job_created",
        task_type=spec.task_type,
        job_id=str(job_id),
        run_at=body.run_at.isoformat() if body.run_at else None,
        max_attempts=body.max_attempts,
        user_id=str(admin.user_id),
    )
    return model_response(CreatedJob, {"success": True, "jobId": str(job_id)})
