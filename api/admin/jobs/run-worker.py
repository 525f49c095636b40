"""An admin runs the worker once, now, and sees its report."""

from lib.endpoints.admin_jobs import run_worker
from lib.http import Routes, VercelHandler


class handler(VercelHandler):  # noqa: N801
    """The dashboard's "Run worker now"; recorded with trigger source admin_manual."""

    routes = Routes(POST=run_worker)
