"""`POST /api/admin/jobs/trigger-sync` and `/trigger-totals-sweep`: an admin enqueues a Game Platform job.

The stored payload holds every key with its default filled in, so a trigger
from the dashboard, one from a schedule (job_queue_schedules) and one from the
CLI that mean the same thing have the same payload — and therefore the same dedupe key: while an equal
job is pending or processing, a trigger answers with that job instead of adding
a second one. The database enforces it (a partial unique index), so concurrent
clicks cannot race past it.

Right after enqueuing, the worker is kicked (lib/kick.py) when its URL is
known, so the job starts within about a second.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from lib.auth.admin import admin_connection
from lib.game_platform.payloads import SYNC_TASK_TYPE, TOTALS_SWEEP_TASK_TYPE, SweepRequest, SyncRequest
from lib.http import Request, Response, ResponseBody, model_response
from lib.kick import kick_worker
from lib.observability import log
from lib.queue import Queue
from lib.settings import get_settings

DEDUPLICATED_MESSAGE = "deduplicated: an equal job is already queued"


class TriggerResponse(ResponseBody):
    """The job that will do the work: a new one, or the equal job already pending or processing."""

    success: Literal[True]
    job_id: UUID
    message: str
    deduplicated: bool = Field(
        default=False, description="present (true) when an equal job was already queued: jobId is that job"
    )


def _trigger(request: Request, model: type[SyncRequest | SweepRequest], task_type: str, message: str) -> Response:
    settings = get_settings()
    with admin_connection(request, settings) as (db, admin):
        params = request.input(model)
        enqueued = Queue(db).enqueue_unique(task_type, params.to_payload())
    kick_worker(settings)  # committed: start the worker now rather than at the next cron tick
    log(
        "admin.job_triggered",
        task_type=task_type,
        job_id=str(enqueued.job_id),
        deduplicated=enqueued.deduplicated,
        user_id=str(admin.user_id),
    )
    body: dict[str, Any] = {"success": True, "jobId": str(enqueued.job_id), "message": message}
    if enqueued.deduplicated:
        body["message"] = DEDUPLICATED_MESSAGE
        body["deduplicated"] = True
    return model_response(TriggerResponse, body)


def trigger_sync(request: Request) -> Response:
    return _trigger(request, SyncRequest, SYNC_TASK_TYPE, "Incremental sync job enqueued successfully")


def trigger_totals_sweep(request: Request) -> Response:
    return _trigger(request, SweepRequest, TOTALS_SWEEP_TASK_TYPE, "Totals sweep job enqueued successfully")
