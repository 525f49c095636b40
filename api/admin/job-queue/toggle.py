"""An admin pauses or resumes processing; the worker obeys on its next call."""

from lib.endpoints.admin_controls import toggle_processing
from lib.http import Routes, VercelHandler


class handler(VercelHandler):  # noqa: N801
    """The pause switch, so an operator can stop processing without a deploy."""

    routes = Routes(POST=toggle_processing)
