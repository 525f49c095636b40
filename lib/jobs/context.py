"""The contract between the worker and a job handler.

A handler is `handle(ctx, payload) -> output`: `payload` is the job's payload
already validated by the task's pydantic model, `output` a JSON-able value
stored on the job. To fail, it raises (lib.errors, "job control"):
- `PermanentJobError` — retrying cannot help (bad input, a missing record);
- `RetryJobLater` — retry after the given delay (an upstream `Retry-After`);
- `JobNotConfigured` — this worker lacks a setting (a vendor token): the job is
  handed back untouched, its attempt not spent;
- anything else — a transient failure, retried with the backoff policy.

A long handler watches `ctx.time_left()` and, when the invocation nears its end,
stops cleanly and enqueues a continuation (`ctx.queue`) instead of being killed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID

from lib.errors import JobNotConfigured, PermanentJobError, RetryJobLater

if TYPE_CHECKING:
    from lib.db import Database
    from lib.queue import Queue
    from lib.settings import Settings


class JobContext(NamedTuple):
    job_id: UUID
    task_type: str
    attempts: int
    max_attempts: int
    deadline: float  # time.monotonic() by which the handler must have returned
    db: Database
    queue: Queue
    settings: Settings

    def time_left(self) -> float:
        """Seconds until the deadline (negative once past it)."""
        return self.deadline - time.monotonic()

    @property
    def is_last_attempt(self) -> bool:
        return self.attempts >= self.max_attempts


def describe(exc: BaseException) -> str:
    """The error text stored in `last_error` and returned to the caller."""
    text = str(exc).strip()
    name = type(exc).__name__
    if isinstance(exc, PermanentJobError | RetryJobLater):
        return text or name
    if isinstance(exc, JobNotConfigured):
        return f"configuration error: {text or name}"
    return f"{name}: {text}" if text else name


JsonValue = Any
