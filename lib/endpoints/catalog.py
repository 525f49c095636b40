"""Every endpoint in one table: path, methods, who may call, and the pydantic models in and out.

The models are the ones the endpoints validate with (`Request.input` for
requests, `lib.http.model_response` for responses), so the OpenAPI description
built from this table (`lib.openapi`, written to docs/openapi.json by
`python -m scripts.openapi`) is the code's own contract. A new endpoint adds a
row here; a test fails while an api/ file and this table disagree.

Not imported by the api/ files: only the generator, the dev server and the tests use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lib.endpoints.admin_config import ConfigQuery, PublicConfig
from lib.endpoints.admin_controls import (
    ActionBody,
    ActionResult,
    JobPage,
    JobsQuery,
    OneJob,
    ProcessingState,
    ToggleBody,
)
from lib.endpoints.admin_health import HealthParams, HealthResponse
from lib.endpoints.admin_jobs import CreateBody, CreatedJob, TaskTypeList, TaskTypesQuery
from lib.endpoints.admin_schedules import ListQuery, SaveBody, SavedSchedule, ScheduleList
from lib.endpoints.admin_triggers import TriggerResponse
from lib.endpoints.worker import DeclinedReport, PausedReport, RunParams, RunReport
from lib.game_platform.payloads import SweepRequest, SyncRequest
from lib.jsonnames import CamelModel

# -- the error shape every endpoint shares (built by lib.errors.ApiError.body) -------------


class FieldError(BaseModel):
    field: str = Field(description="the field, dotted for nested ones (`body` or `query` for the whole input)")
    message: str
    type: str = Field(description="pydantic's error type, e.g. missing, extra_forbidden, int_parsing")


class ErrorBody(CamelModel):
    """`{"error", "message", "details"?}`; some errors add keys of their own (a 409 names the job's status)."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="a stable code: invalid_request, invalid_json, unauthorized, conflict, …")
    message: str = Field(description="a sentence for a human")
    details: list[FieldError] | None = Field(default=None, description="validation errors only: each bad field")


class ConflictBody(ErrorBody):
    """An impossible transition: the job's current status, and the live equal job when that is why."""

    job_id: str
    status: str
    duplicate_of: str | None = None


# -- who may call -----------------------------------------------------------------------------

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "cronSecret": {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer $CRON_SECRET`, as Vercel Cron sends it.",
    },
    "runnerSecret": {
        "type": "apiKey",
        "in": "header",
        "name": "x-job-runner-secret",
        "description": "`$JOB_QUEUE_RUNNER_SECRET`: operators, monitors and the Supabase worker ping.",
    },
    "adminBearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A Supabase access token of a user whose `profiles.role` is `admin`.",
    },
    "adminCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "sb-<project ref>-auth-token",
        "description": "The `@supabase/ssr` session cookie (possibly split into `.0`, `.1`, … chunks).",
    },
}
RUNNER = ("cronSecret", "runnerSecret")
ADMIN = ("adminBearer", "adminCookie")


# -- the table --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One documented status: a description and the body's model(s) (several: one of them)."""

    description: str
    models: tuple[type[BaseModel], ...] = (ErrorBody,)


@dataclass(frozen=True)
class Operation:
    method: str
    summary: str
    security: tuple[str, ...]
    answers: dict[int, Answer]
    query: type[BaseModel] | None = None  # parameters from the query string
    body: type[BaseModel] | None = None  # a JSON body (the query string carries the same fields when it is empty)
    description: str = ""


@dataclass(frozen=True)
class Endpoint:
    path: str
    operations: tuple[Operation, ...] = field(default_factory=tuple)

    @property
    def file(self) -> str:
        """The api/ file that serves it: Vercel maps api/a/b-c.py to /api/a/b-c."""
        return self.path.removeprefix("/") + ".py"


BAD_INPUT = Answer("Invalid input: malformed JSON, an unknown field, a wrong type or value; `details` lists each.")
UNAUTHORIZED = Answer("No valid credential.")
FORBIDDEN = Answer("A valid session whose profile is not an admin, or a cookie session sent cross-site.")
UNAVAILABLE = Answer("The database (or Supabase Auth) is unreachable, or a variable is missing: the message says.")


def _admin(
    method: str,
    summary: str,
    ok: Answer,
    *,
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    description: str = "",
    **more: Answer,
) -> Operation:
    """An admin-only operation: `ok` is its 200 answer, `more` its other answers beyond the admin errors (s404=…)."""
    return Operation(
        method, summary, ADMIN, _admin_errors(s200=ok, **more), query=query, body=body, description=description
    )


def _admin_errors(**extra: Answer) -> dict[int, Answer]:
    answers = {400: BAD_INPUT, 401: UNAUTHORIZED, 403: FORBIDDEN, 503: UNAVAILABLE}
    answers.update({int(status.removeprefix("s")): answer for status, answer in extra.items()})
    return dict(sorted(answers.items()))


_WORKER_ANSWERS = {
    200: Answer(
        "The invocation's report, or `paused` / `declined` (nothing claimed).",
        (RunReport, PausedReport, DeclinedReport),
    ),
    400: BAD_INPUT,
    401: UNAUTHORIZED,
    503: UNAVAILABLE,
}
_WORKER_AUTH = "Either runner secret; an unset or empty secret matches nothing."
_HEALTH_ANSWERS = {
    200: Answer("Healthy.", (HealthResponse,)),
    400: BAD_INPUT,
    401: UNAUTHORIZED,
    403: FORBIDDEN,
    503: Answer(
        "Unhealthy (the same body as 200, `problems` says why), or the database is unreachable.",
        (HealthResponse, ErrorBody),
    ),
}
_HEALTH_AUTH = "An admin session, or either runner secret (for monitors)."


def _trigger(task: str, model: type[BaseModel]) -> Operation:
    return _admin(
        "POST",
        f"Enqueue a {task} job (deduplicated)",
        Answer("The job's id: a new job, or the equal job already queued.", (TriggerResponse,)),
        body=model,
        description="The stored payload is the body with every default filled in. While an equal job is pending "
        "or processing, nothing is enqueued: the answer names that job, with `deduplicated: true`.",
    )


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "/api/admin/config",
        (
            Operation(
                "GET",
                "The page's public Supabase settings (read before sign-in)",
                (),
                {200: Answer("The Supabase URL and anon key, or null.", (PublicConfig,)), 400: BAD_INPUT},
                query=ConfigQuery,
            ),
        ),
    ),
    Endpoint(
        "/api/admin/jobs/create",
        (
            _admin(
                "GET",
                "The task types a job can be created for, with their payload schemas",
                Answer("Every registered task type.", (TaskTypeList,)),
                query=TaskTypesQuery,
            ),
            _admin(
                "POST",
                "Create a job of a registered task type",
                Answer("The new job's id.", (CreatedJob,)),
                body=CreateBody,
            ),
        ),
    ),
    Endpoint(
        "/api/admin/jobs/run-worker",
        (
            _admin(
                "POST",
                "Run the worker once (trigger source admin_manual)",
                Answer("The invocation's report, or `paused`.", (RunReport, PausedReport)),
                body=RunParams,
            ),
        ),
    ),
    Endpoint(
        "/api/jobs/run",
        (
            Operation(
                "GET",
                "Drain due jobs (Vercel Cron)",
                RUNNER,
                _WORKER_ANSWERS,
                query=RunParams,
                description=_WORKER_AUTH,
            ),
            Operation(
                "POST",
                "Drain due jobs (operators, pg_net)",
                RUNNER,
                _WORKER_ANSWERS,
                body=RunParams,
                description=_WORKER_AUTH,
            ),
        ),
    ),
    Endpoint(
        "/api/admin/jobs/trigger-sync",
        (_trigger("game_platform_sync", SyncRequest),),
    ),
    Endpoint(
        "/api/admin/jobs/trigger-totals-sweep",
        (_trigger("game_platform_totals_sweep", SweepRequest),),
    ),
    Endpoint(
        "/api/admin/job-queue/health",
        (
            Operation(
                "GET",
                "The queue's health",
                ADMIN + RUNNER,
                _HEALTH_ANSWERS,
                query=HealthParams,
                description=_HEALTH_AUTH,
            ),
            Operation(
                "HEAD",
                "The queue's health, status code only",
                ADMIN + RUNNER,
                _HEALTH_ANSWERS,
                query=HealthParams,
                description=_HEALTH_AUTH,
            ),
        ),
    ),
    Endpoint(
        "/api/admin/job-queue/schedules",
        (
            _admin(
                "GET",
                "List the schedules",
                Answer("Every schedule.", (ScheduleList,)),
                query=ListQuery,
            ),
            _admin(
                "POST",
                "Update a schedule (name, enabled, cron, payload) or create one (taskType too)",
                Answer("The schedule, updated.", (SavedSchedule,)),
                s201=Answer("The schedule, created.", (SavedSchedule,)),
                s404=Answer("No schedule has that name (and no taskType was given to create it)."),
                s409=Answer("The change conflicts with the schedule's state."),
                body=SaveBody,
            ),
        ),
    ),
    Endpoint(
        "/api/admin/job-queue/toggle",
        (
            _admin(
                "POST",
                "Pause or resume processing",
                Answer("The pause switch now.", (ProcessingState,)),
                body=ToggleBody,
            ),
        ),
    ),
    Endpoint(
        "/api/admin/job-queue/jobs",
        (
            _admin(
                "GET",
                "List jobs (newest first, keyset pages), or one job in full with ?id=",
                Answer("A page of jobs, or with `id` the job in full.", (JobPage, OneJob)),
                s404=Answer("No job has that id."),
                query=JobsQuery,
            ),
        ),
    ),
    Endpoint(
        "/api/admin/job-queue/actions",
        (
            _admin(
                "POST",
                "Retry or cancel a job",
                Answer("The transition made.", (ActionResult,)),
                s404=Answer("No job has that id."),
                s409=Answer("Impossible from the job's current status.", (ConflictBody,)),
                body=ActionBody,
            ),
        ),
    ),
)
