"""An admin retries or cancels one job."""

from lib.endpoints.admin_controls import job_action
from lib.http import Routes, VercelHandler


class handler(VercelHandler):  # noqa: N801
    """Retry or cancel: the two repairs an operator makes to a single job."""

    routes = Routes(POST=job_action)
