"""An admin pauses or resumes processing; the worker obeys on its next call."""

from lib.endpoints.admin_controls import toggle_processing
from lib.http import vercel_handler


class handler(vercel_handler(POST=toggle_processing)):  # noqa: N801
    """The pause switch, so an operator can stop processing without a deploy."""
