"""Queue health for the dashboard (admin session) and monitors (runner secret): 200 healthy, 503 not."""

from lib.endpoints.admin_health import queue_health
from lib.http import Routes, VercelHandler


class handler(VercelHandler):  # noqa: N801
    """One verdict (200/503) that both a person and an uptime monitor can read."""

    routes = Routes(GET=queue_health, HEAD=queue_health)
