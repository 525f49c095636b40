"""Environment configuration, validated once per process.

Nothing here runs at import: a missing or malformed variable must not crash a
cold start. The first call to `get_settings()` validates the environment and
either returns the settings or raises `ConfigurationError` naming each bad
variable (never its value: some are secrets).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from lib.errors import ConfigurationError
from lib.validation import field_errors, summary

DEFAULT_GAME_PLATFORM_API_BASE_URL = "https://api.metactf.com/integrations/syned/v1"

# How old a finished job or a worker invocation must be for the cleanup to delete it: the
# `job_queue_cleanup` task's payload default (so the seeded daily schedule's `olderThanDays`),
# the CLI's `cleanup` default and `Queue.cleanup`'s. SQL's `job_queue_cleanup()` defaults to the
# same figure; tests/test_schedules.py checks both the SQL default and the seeded schedule.
RETENTION_DAYS = 30

PositiveSeconds = Annotated[float, Field(gt=0)]


class Settings(BaseModel):
    """Every variable the bundle reads. Field aliases are the variable names."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    # Database. POSTGRES_URL is what Vercel's Supabase integration sets.
    database_url: SecretStr | None = Field(default=None, validation_alias=AliasChoices("DATABASE_URL", "POSTGRES_URL"))
    db_connect_timeout_seconds: Annotated[int, Field(ge=1, le=60)] = Field(
        default=5, alias="DB_CONNECT_TIMEOUT_SECONDS"
    )
    db_statement_timeout_seconds: PositiveSeconds = Field(default=30.0, alias="DB_STATEMENT_TIMEOUT_SECONDS")

    # Worker authentication: each optional; an unset one matches nothing.
    cron_secret: SecretStr | None = Field(default=None, alias="CRON_SECRET")
    job_queue_runner_secret: SecretStr | None = Field(default=None, alias="JOB_QUEUE_RUNNER_SECRET")

    # Worker time budget. Keep JOB_WORKER_MAX_DURATION_SECONDS equal to the
    # worker's maxDuration in vercel.json.
    worker_max_duration_seconds: PositiveSeconds = Field(default=300.0, alias="JOB_WORKER_MAX_DURATION_SECONDS")
    worker_finish_margin_seconds: Annotated[float, Field(ge=0)] = Field(
        default=15.0, alias="JOB_WORKER_FINISH_MARGIN_SECONDS"
    )
    worker_min_job_seconds: Annotated[float, Field(ge=0)] = Field(default=30.0, alias="JOB_WORKER_MIN_JOB_SECONDS")
    worker_lease_margin_seconds: Annotated[float, Field(ge=0)] = Field(
        default=60.0, alias="JOB_WORKER_LEASE_MARGIN_SECONDS"
    )
    # Fan-out over a backlog (docs/throughput.md): at most this many worker
    # invocations run at once when invocations start follow-ups; a chain of
    # follow-ups stops after this many generations or this many seconds.
    worker_max_parallel: Annotated[int, Field(ge=1, le=64)] = Field(default=4, alias="JOB_WORKER_MAX_PARALLEL")
    worker_fanout_max_generations: Annotated[int, Field(ge=0, le=100_000)] = Field(
        default=1000, alias="JOB_WORKER_FANOUT_MAX_GENERATIONS"
    )
    worker_fanout_max_seconds: PositiveSeconds = Field(default=240.0, alias="JOB_WORKER_FANOUT_MAX_SECONDS")
    retry_base_seconds: PositiveSeconds = Field(default=30.0, alias="JOB_RETRY_BASE_SECONDS")
    retry_max_seconds: PositiveSeconds = Field(default=3600.0, alias="JOB_RETRY_MAX_SECONDS")

    # Observability.
    sentry_dsn: SecretStr | None = Field(default=None, alias="SENTRY_DSN")
    vercel_env: str | None = Field(default=None, alias="VERCEL_ENV")
    vercel_git_commit_sha: str | None = Field(default=None, alias="VERCEL_GIT_COMMIT_SHA")

    # Admin authentication (Supabase).
    supabase_url: str | None = Field(default=None, alias="SUPABASE_URL")
    supabase_anon_key: SecretStr | None = Field(default=None, alias="SUPABASE_ANON_KEY")
    supabase_jwt_secret: SecretStr | None = Field(default=None, alias="SUPABASE_JWT_SECRET")
    # Calls to Supabase Auth (JWKS, /auth/v1/user) block an admin request: keep them short.
    supabase_auth_timeout_seconds: Annotated[float, Field(gt=0, le=20)] = Field(
        default=5.0, alias="SUPABASE_AUTH_TIMEOUT_SECONDS"
    )

    # Cookie sessions' same-origin check: take the host and scheme from
    # X-Forwarded-Host / X-Forwarded-Proto. Only behind a proxy that overwrites
    # both (clients can send them); off by default.
    admin_trust_forwarded_headers: bool = Field(default=False, alias="ADMIN_TRUST_FORWARDED_HEADERS")

    # The kick: right after a trigger, retry or create enqueues, one POST to the
    # worker so the job starts in about a second instead of at the next cron
    # tick. JOB_QUEUE_WORKER_URL is the absolute URL of /api/jobs/run; on Vercel
    # it defaults to the production domain's (see `worker_url`).
    job_queue_worker_url: str | None = Field(default=None, alias="JOB_QUEUE_WORKER_URL")
    vercel_project_production_url: str | None = Field(default=None, alias="VERCEL_PROJECT_PRODUCTION_URL")
    vercel_url: str | None = Field(default=None, alias="VERCEL_URL")
    # Connecting and sending the kick; then how long to wait for the worker's answer
    # before leaving it running (see lib/kick.py).
    kick_connect_timeout_seconds: Annotated[float, Field(gt=0, le=10)] = Field(
        default=2.0, alias="JOB_QUEUE_KICK_CONNECT_TIMEOUT_SECONDS"
    )
    kick_answer_wait_seconds: Annotated[float, Field(ge=0, le=10)] = Field(
        default=0.5, alias="JOB_QUEUE_KICK_ANSWER_WAIT_SECONDS"
    )

    # Health thresholds.
    health_max_wait_seconds: PositiveSeconds = Field(default=600.0, alias="JOB_QUEUE_HEALTH_MAX_WAIT_SECONDS")

    # Game Platform vendor.
    game_platform_api_base_url: str = Field(
        default=DEFAULT_GAME_PLATFORM_API_BASE_URL, alias="GAME_PLATFORM_API_BASE_URL"
    )
    game_platform_api_token: SecretStr | None = Field(default=None, alias="GAME_PLATFORM_API_TOKEN")
    game_platform_concurrency: Annotated[int, Field(ge=1, le=64)] = Field(default=8, alias="GAME_PLATFORM_CONCURRENCY")
    game_platform_timeout_seconds: PositiveSeconds = Field(default=15.0, alias="GAME_PLATFORM_TIMEOUT_SECONDS")
    # Per call: attempts on 5xx/429/network errors, and the first backoff (it doubles, capped at 8 s).
    game_platform_max_attempts: Annotated[int, Field(ge=1, le=10)] = Field(
        default=4, alias="GAME_PLATFORM_MAX_ATTEMPTS"
    )
    game_platform_retry_base_seconds: PositiveSeconds = Field(default=0.5, alias="GAME_PLATFORM_RETRY_BASE_SECONDS")

    @property
    def worker_lease_seconds(self) -> float:
        """A claim's lease outlives the invocation, so only a dead worker's jobs expire."""
        return self.worker_max_duration_seconds + self.worker_lease_margin_seconds

    @field_validator("job_queue_worker_url")
    @classmethod
    def _absolute_http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL, like https://example.com/api/jobs/run")
        return value

    @property
    def worker_url(self) -> str | None:
        """Where a kick goes: JOB_QUEUE_WORKER_URL, else on Vercel the production
        domain's /api/jobs/run, else this deployment's; None when unknown."""
        if self.job_queue_worker_url:
            return self.job_queue_worker_url
        for host in (self.vercel_project_production_url, self.vercel_url):
            if host:
                host = host.removeprefix("https://").removeprefix("http://").strip("/")
                return f"https://{host}/api/jobs/run"
        return None

    @property
    def runner_secrets_configured(self) -> bool:
        return bool(secret_value(self.cron_secret) or secret_value(self.job_queue_runner_secret))


def variable_names() -> tuple[str, ...]:
    """Every environment variable the settings read."""
    names: list[str] = []
    for field in Settings.model_fields.values():
        if isinstance(field.validation_alias, AliasChoices):
            names.extend(str(choice) for choice in field.validation_alias.choices)
        elif field.alias:
            names.append(field.alias)
    return tuple(names)


def secret_value(secret: SecretStr | None) -> str:
    """The secret's text, or "" when unset."""
    return secret.get_secret_value() if secret is not None else ""


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Validate an environment. Empty and blank variables count as unset."""
    values = {k: v.strip() for k, v in environ.items() if v.strip()}
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        raise ConfigurationError("invalid environment: " + summary(field_errors(exc, whole="environment"))) from None


_lock = threading.Lock()
_cached: Settings | None = None


def get_settings() -> Settings:
    """The process's settings, validated on first use and then reused."""
    global _cached
    if _cached is None:
        with _lock:
            if _cached is None:
                _cached = load_settings(os.environ)
    return _cached


def reload_settings() -> Settings:
    """Forget the cached settings and read the environment again (tests, dev server)."""
    global _cached
    with _lock:
        _cached = None
    return get_settings()
