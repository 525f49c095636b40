"""An admin creates a job of a registered task type (GET lists the types)."""

from lib.endpoints.admin_jobs import create_job, list_task_types
from lib.http import Routes, VercelHandler


class handler(VercelHandler):  # noqa: N801
    """The dashboard's "Create job": the payload is validated by the task type's model."""

    routes = Routes(GET=list_task_types, POST=create_job)
