"""`GET|POST /api/jobs/run`: Vercel Cron (GET), operators and pg_net (POST) drain the queue."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lib.auth.runner import require_runner_secret, trigger_source
from lib.db import connect
from lib.fanout import Chain, start_follow_ups
from lib.http import Request, Response, ResponseBody, model_response
from lib.settings import get_settings
from lib.worker import MAX_LIMIT, Worker


class RunParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=5, ge=1, description="jobs to claim; above 10 is capped to 10")
    force: bool = Field(default=False, description="run even while processing is paused")
    chain: Chain | None = Field(default=None, description="set by a follow-up of a fan-out (lib/fanout.py)")

    @field_validator("limit")
    @classmethod
    def _cap(cls, value: int) -> int:
        return min(value, MAX_LIMIT)


class JobOutcome(ResponseBody):
    """One claimed job: its status after this invocation."""

    id: str
    task_type: str
    status: Literal["succeeded", "pending", "failed", "cancelled", "processing", "deleted"] = Field(
        description="pending: a retry is scheduled at retryAt (or the job was handed back unstarted)"
    )
    attempts: int
    last_error: str | None
    duration_ms: int
    retry_at: datetime | None = Field(default=None, description="only when a retry is scheduled")
    lease_lost: bool = Field(default=False, description="present (true) when this attempt's outcome was not recorded")
    job_status: str | None = Field(default=None, description="with leaseLost: what the job's row says now")


class RunReport(ResponseBody):
    """What one worker invocation did."""

    status: Literal["ok"]
    processed: int
    succeeded: int
    failed: int = Field(description="failed for good, or awaiting a retry")
    released: int = Field(description="claimed but not started before the time budget ran out; attempt not spent")
    results: list[JobOutcome]


class PausedReport(ResponseBody):
    """Processing is paused and `force` was not given: nothing was claimed."""

    status: Literal["paused"]
    processed: Literal[0]
    reason: str | None


class DeclinedReport(ResponseBody):
    """A fan-out follow-up refused by its bound (or by the pause switch): nothing was claimed."""

    status: Literal["declined"]
    processed: Literal[0]
    reason: str | None


def report_model(body: dict[str, object]) -> type[BaseModel]:
    """The published model of a worker report, by its status."""
    models: dict[str, type[BaseModel]] = {"paused": PausedReport, "declined": DeclinedReport}
    return models.get(str(body["status"]), RunReport)


def run_jobs(request: Request) -> Response:
    received_at = time.monotonic()
    settings = get_settings()
    credential = require_runner_secret(request, settings)
    params = request.input(RunParams)
    follow_ups = None
    if settings.worker_url is not None:
        url_settings = settings

        def follow_ups(chain: Chain, count: int, limit: int) -> int:
            return start_follow_ups(url_settings, chain, count, limit)

    with connect(settings) as db:
        report = Worker(db, settings, registry=request.registry, follow_ups=follow_ups).drain(
            limit=params.limit,
            force=params.force,
            trigger_source="fanout" if params.chain else trigger_source(request, credential),
            started_at=received_at,
            chain=params.chain,
        )
    body = report.to_json()
    return model_response(report_model(body), body)
