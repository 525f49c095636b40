"""`GET /api/admin/job-queue/health`: for the dashboard (admin session) and for monitors (runner secret).

200 when healthy, 503 when not, with the same body either way, so an uptime
monitor can watch the status code and a human can read why.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from lib.auth.admin import SessionUser, authenticate, authorize_admin
from lib.auth.runner import match_runner_secret
from lib.db import connect
from lib.errors import Unauthorized
from lib.health import health_report
from lib.http import Request, Response, ResponseBody, model_response
from lib.job_views import JobColumns
from lib.settings import Settings, get_settings


class HealthParams(BaseModel):
    """No parameters; unknown ones are refused like everywhere else."""

    model_config = ConfigDict(extra="forbid")


class QueueCounts(ResponseBody):
    pending: int
    processing: int
    succeeded: int
    failed: int
    cancelled: int


class RecentRun(ResponseBody):
    """One worker invocation (job_queue_invocations)."""

    id: int
    trigger_source: str
    status: str
    claimed: int | None = None
    processed: int | None = None
    succeeded: int | None = None
    failed: int | None = None
    released: int | None = None
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None


class RecentJob(JobColumns):
    """One of the newest jobs: the fields every view of a job shows (lib.job_views), lastError cut to 1000."""


class HealthResponse(ResponseBody):
    """The queue's health; the same body with 200 (healthy) and 503 (not)."""

    healthy: bool
    problems: list[str] = Field(description="one sentence per problem; empty when healthy")
    processing_enabled: bool
    paused_reason: str | None
    queue_counts: QueueCounts
    due_pending: int
    oldest_pending_age_seconds: float | None
    stuck_jobs: int = Field(description="jobs in processing past their lease")
    failed_last_24h: int
    last_run_at: datetime | None
    last_run_age_seconds: float | None
    recent_runs: list[RecentRun] = Field(description="the last 10 worker runs")
    recent_jobs: list[RecentJob] = Field(description="the last 10 jobs")
    max_wait_seconds: float
    checked_at: datetime | None


MONITOR_HINT = (
    "Monitors may send x-job-runner-secret: <JOB_QUEUE_RUNNER_SECRET> (or Authorization: Bearer <CRON_SECRET>) instead."
)


def _admin_or_explain(request: Request, settings: Settings) -> SessionUser:
    """The admin session; a 401 names the runner secrets this endpoint also accepts."""
    try:
        return authenticate(request, settings)
    except Unauthorized as exc:
        raise Unauthorized(f"{exc.message} {MONITOR_HINT}", details=exc.details, **exc.extra) from None


def queue_health(request: Request) -> Response:
    settings = get_settings()
    # A runner secret (CRON_SECRET as a bearer, or x-job-runner-secret) is checked
    # first, in constant time; anything else must be an admin session.
    user = None if match_runner_secret(request, settings) else _admin_or_explain(request, settings)
    with connect(settings) as db:
        if user is not None:
            authorize_admin(db, user)
        request.input(HealthParams)
        report = health_report(db, settings)
    return model_response(HealthResponse, report.to_json(), status=report.http_status)
