"""An admin enqueues a Game Platform totals sweep (deduplicated)."""

from lib.endpoints.admin_triggers import trigger_totals_sweep
from lib.http import Routes, VercelHandler


class handler(VercelHandler):  # noqa: N801
    """Lets an admin start a totals sweep now instead of waiting for its schedule."""

    routes = Routes(POST=trigger_totals_sweep)
