"""Worker: Vercel Cron calls it with GET every 5 minutes; operators and pg_net POST to it."""

from lib.endpoints.worker import run_jobs
from lib.http import Routes, VercelHandler


class handler(VercelHandler):  # noqa: N801
    """The worker's one entry point: every caller drains the same queue the same way."""

    routes = Routes(GET=run_jobs, POST=run_jobs)
