"""Worker: Vercel Cron calls it with GET every 5 minutes; operators and pg_net POST to it."""

from lib.endpoints.worker import run_jobs
from lib.http import vercel_handler

handler = vercel_handler(GET=run_jobs, POST=run_jobs)
