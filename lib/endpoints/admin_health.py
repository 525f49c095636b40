"""`GET /api/admin/job-queue/health`: for the dashboard (admin session) and for monitors (runner secret).

200 when healthy, 503 when not, with the same body either way, so an uptime
monitor can watch the status code and a human can read why.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from lib.auth.admin import authenticate, authorize_admin
from lib.auth.runner import match_runner_secret
from lib.db import connect
from lib.health import health_report
from lib.http import Request, Response, json_response
from lib.settings import get_settings


class HealthParams(BaseModel):
    """No parameters; unknown ones are refused like everywhere else."""

    model_config = ConfigDict(extra="forbid")


def queue_health(request: Request) -> Response:
    settings = get_settings()
    # A runner secret (CRON_SECRET as a bearer, or x-job-runner-secret) is checked
    # first, in constant time; anything else must be an admin session.
    user = None if match_runner_secret(request, settings) else authenticate(request, settings)
    with connect(settings) as db:
        if user is not None:
            authorize_admin(db, user)
        request.input(HealthParams)
        report = health_report(db, settings)
    return json_response(report.to_json(), status=report.http_status)
