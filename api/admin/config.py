"""Public settings for the dashboard's sign-in: Supabase URL and anon key."""

from lib.endpoints.admin_config import public_config
from lib.http import vercel_handler


class handler(vercel_handler(GET=public_config)):  # noqa: N801
    """The dashboard page reads this before sign-in; it holds nothing secret."""
