"""`job_queue_cleanup`: the retention sweep as a job, so the queue's own schedules run it.

It calls the core migration's `job_queue_cleanup` (finished jobs and worker runs
past an age, deleted in bounded batches) until a call finds less than a full
load or the invocation's time runs short; whatever is left goes with the next
day's run.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from pydantic import ConfigDict, Field, StrictInt

from lib.jobs.context import JobContext
from lib.jobs.registry import TaskSpec
from lib.jsonnames import CamelModel
from lib.queue import CLEANUP_BATCH_SIZE, CLEANUP_MAX_BATCHES
from lib.settings import RETENTION_DAYS

CLEANUP_TASK_TYPE = "job_queue_cleanup"

# One call deletes at most this many rows per table: more than that may be left.
_FULL_CALL = CLEANUP_BATCH_SIZE * CLEANUP_MAX_BATCHES
# A call deletes up to 50,000 rows of each table; never start one this close to the deadline.
_MIN_SECONDS_PER_CALL = 20.0


class CleanupPayload(CamelModel):
    """Delete finished jobs and worker runs older than `olderThanDays`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    older_than_days: Annotated[StrictInt, Field(ge=0, le=3650)] = Field(
        default=RETENTION_DAYS,
        description="age in days past which a finished job or a worker run is deleted",
    )

    def to_payload(self) -> dict[str, Any]:
        """The job payload: every field, defaults filled in, camelCase keys."""
        return self.model_dump(mode="json")


def handle(ctx: JobContext, payload: CleanupPayload) -> dict[str, Any]:
    older_than = timedelta(days=payload.older_than_days)
    removed = calls = 0
    while True:
        batch = ctx.queue.cleanup(older_than)
        removed += batch
        calls += 1
        if batch < _FULL_CALL or ctx.time_left() < _MIN_SECONDS_PER_CALL:
            break
    return {
        "removed": removed,
        "olderThanDays": payload.older_than_days,
        "calls": calls,
        "complete": batch < _FULL_CALL,
    }


TASK = TaskSpec(CLEANUP_TASK_TYPE, CleanupPayload, handle)
