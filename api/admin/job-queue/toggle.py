"""An admin pauses or resumes processing; the worker obeys on its next call."""

from lib.endpoints.admin_controls import toggle_processing
from lib.http import vercel_handler

handler = vercel_handler(POST=toggle_processing)
