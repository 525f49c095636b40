"""An admin enqueues an incremental Game Platform sync (deduplicated)."""

from lib.endpoints.admin_triggers import trigger_sync
from lib.http import vercel_handler

handler = vercel_handler(POST=trigger_sync)
