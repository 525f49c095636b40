"""An admin runs the worker once, now, and sees its report."""

from lib.endpoints.admin_jobs import run_worker
from lib.http import vercel_handler


class handler(vercel_handler(POST=run_worker)):  # noqa: N801
    """The dashboard's "Run worker now"; recorded with trigger source admin_manual."""
