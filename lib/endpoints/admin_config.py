"""`GET /api/admin/config`: what the dashboard page needs before anyone has signed in.

Public on purpose, and holding nothing secret: Supabase's URL and anon key are
what every Supabase browser client ships with (the anon key only identifies the
project; row level security and the admin check decide what it may do). The
page uses them to sign an operator in with email and password when it is not
on the app's own domain, where the session cookie would do.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from lib.http import Request, Response, ResponseBody, model_response
from lib.settings import get_settings, secret_value


class ConfigQuery(BaseModel):
    """No parameters; unknown ones are refused like everywhere else."""

    model_config = ConfigDict(extra="forbid")


class PublicConfig(ResponseBody):
    """What the page needs to sign in with Supabase; nothing secret (the anon key is public)."""

    supabase_url: str | None
    supabase_anon_key: str | None


def public_config(request: Request) -> Response:
    settings = get_settings()
    request.input(ConfigQuery)
    anon_key = secret_value(settings.supabase_anon_key)
    return model_response(
        PublicConfig,
        {
            "supabaseUrl": settings.supabase_url.rstrip("/") if settings.supabase_url else None,
            "supabaseAnonKey": anon_key or None,
        },
    )
