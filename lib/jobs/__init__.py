"""Job handlers: the public way to add a task type, the contract a handler implements, and our own task types.

    from lib.jobs import JobContext, TaskRegistry, default_registry

    @default_registry.task("send_welcome_email", WelcomePayload, quick=True)
    def send_welcome_email(ctx: JobContext, payload: WelcomePayload) -> dict[str, object]:
        ...

docs/jobs.md ("Adding a job type") has a working example; `lib.jobs.registry`
explains lazy registration (`register_module`), `lib.jobs.context` what a handler
may raise (the exceptions themselves live in `lib.errors`, "job control").
Importing this package loads neither httpx nor a handler module.
"""

from lib.errors import JobNotConfigured, PermanentJobError, RetryJobLater
from lib.jobs.context import JobContext
from lib.jobs.registry import (
    PayloadRejected,
    TaskRegistry,
    TaskSpec,
    builtin_registry,
    default_registry,
    stored_payload,
)

__all__ = [
    "JobContext",
    "JobNotConfigured",
    "PayloadRejected",
    "PermanentJobError",
    "RetryJobLater",
    "TaskRegistry",
    "TaskSpec",
    "builtin_registry",
    "default_registry",
    "stored_payload",
]
