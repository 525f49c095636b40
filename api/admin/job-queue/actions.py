"""An admin retries or cancels one job."""

from lib.endpoints.admin_controls import job_action
from lib.http import vercel_handler

handler = vercel_handler(POST=job_action)
