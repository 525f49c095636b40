"""An admin enqueues an incremental Game Platform sync (deduplicated)."""

from lib.endpoints.admin_triggers import trigger_sync
from lib.http import Routes, VercelHandler


class handler(VercelHandler):  # noqa: N801
    """Lets an admin start a sync now instead of waiting for its schedule."""

    routes = Routes(POST=trigger_sync)
