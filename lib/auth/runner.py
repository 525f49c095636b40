"""The worker's shared secrets: Vercel Cron's and the operators'.

Vercel Cron sends `Authorization: Bearer $CRON_SECRET`; operators, monitors and
pg_net send `x-job-runner-secret: $JOB_QUEUE_RUNNER_SECRET`. Each secret is
optional and an unset or empty one matches nothing, so `Bearer ` or `Bearer
undefined` never gets in. Comparisons take constant time.
"""

from __future__ import annotations

import hmac
from enum import StrEnum

from lib.errors import Unauthorized
from lib.http import Request
from lib.observability import log
from lib.settings import Settings, secret_value


class RunnerCredential(StrEnum):
    CRON_SECRET = "cron_secret"  # noqa: S105 - the credential's name, not its value
    RUNNER_SECRET = "runner_secret"  # noqa: S105


def _matches(presented: str | None, expected: str) -> bool:
    if not presented or not expected:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, if any."""
    value = request.header("authorization")
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def match_runner_secret(request: Request, settings: Settings) -> RunnerCredential | None:
    """Which runner secret the request carries, if any."""
    if _matches(bearer_token(request), secret_value(settings.cron_secret)):
        return RunnerCredential.CRON_SECRET
    if _matches(request.header("x-job-runner-secret"), secret_value(settings.job_queue_runner_secret)):
        return RunnerCredential.RUNNER_SECRET
    return None


def require_runner_secret(request: Request, settings: Settings) -> RunnerCredential:
    """Admit a caller with either runner secret; 401 otherwise."""
    if not settings.runner_secrets_configured:
        log(
            "auth.misconfigured",
            "error",
            message="Neither CRON_SECRET nor JOB_QUEUE_RUNNER_SECRET is set: every worker call is refused.",
        )
    credential = match_runner_secret(request, settings)
    if credential is None:
        raise Unauthorized(
            "Send Authorization: Bearer <CRON_SECRET> or x-job-runner-secret: <JOB_QUEUE_RUNNER_SECRET>."
        )
    return credential


def trigger_source(request: Request, credential: RunnerCredential) -> str:
    """Where a worker call came from, for the run history."""
    agent = (request.header("user-agent") or "").lower()
    if agent.startswith("vercel-cron/"):
        return "vercel_cron"
    if agent.startswith("pg_net/"):
        return "pg_net"
    if agent.startswith("job-queue-kick/"):  # lib/kick.py, right after an enqueue
        return "kick"
    return "cron_secret" if credential is RunnerCredential.CRON_SECRET else "runner_secret"
