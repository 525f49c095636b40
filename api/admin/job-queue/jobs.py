"""An admin lists jobs (filters, keyset pages) or reads one in full (?id=)."""

from lib.endpoints.admin_controls import list_jobs
from lib.http import Routes, VercelHandler


class handler(VercelHandler):  # noqa: N801
    """The dashboard's window onto the queue, read only."""

    routes = Routes(GET=list_jobs)
