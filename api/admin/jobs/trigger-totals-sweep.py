"""An admin enqueues a Game Platform totals sweep (deduplicated)."""

from lib.endpoints.admin_triggers import trigger_totals_sweep
from lib.http import vercel_handler


class handler(vercel_handler(POST=trigger_totals_sweep)):  # noqa: N801
    """Lets an admin start a totals sweep now instead of waiting for its schedule."""
