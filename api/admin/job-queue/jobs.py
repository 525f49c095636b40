"""An admin lists jobs (filters, keyset pages) or reads one in full (?id=)."""

from lib.endpoints.admin_controls import list_jobs
from lib.http import vercel_handler


class handler(vercel_handler(GET=list_jobs)):  # noqa: N801
    """The dashboard's window onto the queue, read only."""
