"""The queue's health: what `/api/admin/job-queue/health` answers and the operator CLI prints.

Public API (kept stable for the CLI):

    report = health_report(db, settings)   # one database round trip
    report.healthy                          # bool
    report.problems                         # list[str], empty when healthy
    report.http_status                      # 200 when healthy, else 503
    report.to_json()                        # the endpoint's body (camelCase keys)

The numbers come from `job_queue_health_snapshot` (counted in SQL through
indexes) and the dashboard's bounded lists from `job_queue_health_details`
(stuck and overdue jobs, schedules, the last Game Platform sync run), both in
one statement; this module only judges them. The queue is unhealthy when:
- a due pending job has waited longer than `JOB_QUEUE_HEALTH_MAX_WAIT_SECONDS`
  (default 600): work is piling up, whatever the cause (paused, worker failing);
- a job sits in `processing` past its lease: its worker died and no worker has
  run since to take it over;
- jobs are due and the worker has not run for longer than that threshold: the
  cron (or pg_net ping) has stopped calling it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lib.db import Database
from lib.job_status import JobStatus
from lib.jsonnames import camel_keys
from lib.queue import NO_HEALTH_DETAILS, HealthDetails, HealthSnapshot, Queue
from lib.settings import Settings

RECENT_ITEMS = 10
LIST_LIMIT = 25  # stuck, overdue and schedules: enough to act on, small enough to poll


@dataclass(frozen=True)
class HealthReport:
    snapshot: HealthSnapshot
    max_wait_seconds: float
    problems: list[str]
    details: HealthDetails = NO_HEALTH_DETAILS

    @property
    def healthy(self) -> bool:
        return not self.problems

    @property
    def http_status(self) -> int:
        """200 when healthy, 503 when not, so an uptime monitor can watch the status code alone."""
        return 200 if self.healthy else 503

    def to_json(self) -> dict[str, Any]:
        s = self.snapshot
        return {
            "healthy": self.healthy,
            "problems": list(self.problems),
            "processingEnabled": s.processing_enabled,
            "pausedReason": s.paused_reason,
            "queueCounts": {status.value: int(getattr(s, status.value)) for status in JobStatus},
            "duePending": s.due_pending,
            "oldestPendingAgeSeconds": _seconds(s.oldest_due_pending_age_seconds),
            "stuckJobs": s.stuck_jobs,
            "failedLast24h": s.failed_last_24h,
            "lastRunAt": _iso(s.last_run_at),
            "lastRunAgeSeconds": _seconds(s.last_run_age_seconds),
            "recentRuns": [camel_keys(run) for run in s.recent_runs],
            "recentJobs": [camel_keys(job) for job in s.recent_jobs],
            "maxWaitSeconds": self.max_wait_seconds,
            "checkedAt": _iso(s.checked_at),
            "stuck": list(self.details.stuck),
            "overdue": list(self.details.overdue),
            "schedules": list(self.details.schedules),
            "lastSyncRun": self.details.last_sync_run,
        }


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(max(value, 0.0), 3)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _jobs(n: int) -> str:
    return f"{n} job{'s' if n != 1 else ''}"


def assess(snapshot: HealthSnapshot, max_wait_seconds: float) -> list[str]:
    """The sentences that make the queue unhealthy (pure: tested without a database)."""
    problems = []
    oldest = snapshot.oldest_due_pending_age_seconds
    if oldest is not None and oldest > max_wait_seconds:
        why = (
            f" Processing is paused ({snapshot.paused_reason or 'no reason given'})."
            if not snapshot.processing_enabled
            else ""
        )
        problems.append(
            f"The oldest due job has waited {oldest:.0f} s, longer than the {max_wait_seconds:g} s threshold "
            f"({_jobs(snapshot.due_pending)} due).{why}"
        )
    if snapshot.stuck_jobs == 1:
        problems.append(
            "1 job is stuck in processing past its lease: the worker holding it stopped before finishing, "
            "and no worker has run since to take it over."
        )
    elif snapshot.stuck_jobs:
        problems.append(
            f"{snapshot.stuck_jobs} jobs are stuck in processing past their lease: the workers holding them "
            "stopped before finishing, and no worker has run since to take them over."
        )
    if snapshot.due_pending:
        last = snapshot.last_run_age_seconds
        if last is not None and last > max_wait_seconds:
            problems.append(
                f"The worker has not run for {last:.0f} s (threshold {max_wait_seconds:g} s) "
                f"while {_jobs(snapshot.due_pending)} {'is' if snapshot.due_pending == 1 else 'are'} due: "
                "is its cron still calling /api/jobs/run?"
            )
        elif last is None and oldest is not None and oldest > max_wait_seconds:
            problems.append("The worker has never run while jobs are due: is its cron calling /api/jobs/run?")
    return problems


def health_report(db: Database, settings: Settings) -> HealthReport:
    """Read the queue's state (one round trip) and judge it against the configured threshold.

    A job counts as overdue once it has been due for longer than that same threshold.
    """
    max_wait = settings.health_max_wait_seconds
    snapshot, details = Queue(db).health(RECENT_ITEMS, max_wait, LIST_LIMIT)
    return HealthReport(
        snapshot=snapshot, max_wait_seconds=max_wait, problems=assess(snapshot, max_wait), details=details
    )
