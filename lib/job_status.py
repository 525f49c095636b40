"""A job's status: the one list of them (the `job_queue.status` check constraint says the same; a test compares).

JobStatus.PENDING == "pending"         # a StrEnum: members are the strings the table stores
list(JobStatus)                         # every status, in lifecycle order
status: JobStatusField | None = None    # a pydantic field: validated against the list
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator


class JobStatus(StrEnum):
    PENDING = "pending"  # waiting for its run_at, or for a worker
    PROCESSING = "processing"  # claimed: a worker holds its lease
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # out of attempts, or failed permanently
    CANCELLED = "cancelled"


# The status as a model field: validated as a literal of the enum's values (so its JSON
# schema is the inline enum the API has always published, and a wrong value is refused
# as before), then made the member.
if TYPE_CHECKING:
    JobStatusField = JobStatus
else:
    JobStatusField = Annotated[Literal[tuple(s.value for s in JobStatus)], AfterValidator(JobStatus)]
