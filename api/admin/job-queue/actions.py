"""An admin retries or cancels one job."""

from lib.endpoints.admin_controls import job_action
from lib.http import vercel_handler


class handler(vercel_handler(POST=job_action)):  # noqa: N801
    """Retry or cancel: the two repairs an operator makes to a single job."""
