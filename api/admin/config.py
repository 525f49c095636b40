"""Public settings for the dashboard's sign-in: Supabase URL and anon key."""

from lib.endpoints.admin_config import public_config
from lib.http import Routes, VercelHandler


class handler(VercelHandler):  # noqa: N801
    """The dashboard page reads this before sign-in; it holds nothing secret."""

    routes = Routes(GET=public_config)
