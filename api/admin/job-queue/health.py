"""Queue health for the dashboard (admin session) and monitors (runner secret): 200 healthy, 503 not."""

from lib.endpoints.admin_health import queue_health
from lib.http import vercel_handler

handler = vercel_handler(GET=queue_health, HEAD=queue_health)
