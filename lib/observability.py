"""JSON-lines logs on stdout and Sentry.

Vercel keeps each stdout line as a log entry, so one JSON object per line makes
every field searchable. Sentry is imported only when `SENTRY_DSN` is set: the
SDK costs a noticeable slice of a cold start, and without a DSN it stays off,
silently.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import traceback
from typing import Any, Literal

from lib.settings import Settings, secret_value

Level = Literal["debug", "info", "warning", "error"]

_write_lock = threading.Lock()

# Libraries that log each request at INFO. On Vercel the bridge (vercel-runtime)
# sets the root logger to INFO, so httpx alone would log every vendor call as a
# plain-text line among ours; their warnings and errors still come through.
QUIET_LOGGERS = ("httpx", "httpcore", "urllib3", "hpack", "sentry_sdk")


def quiet_third_party_loggers() -> None:
    """Keep our JSON lines the only lines: other libraries' loggers at WARNING and above."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


quiet_third_party_loggers()


def log(event: str, level: Level = "info", **fields: Any) -> None:
    """Write one JSON object per line. Callers pass ids and counts, never secrets."""
    record: dict[str, Any] = {"ts": round(time.time(), 3), "level": level, "event": event}
    record.update(fields)
    line = json.dumps(record, default=str, separators=(",", ":"))
    with _write_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def log_exception(event: str, exc: BaseException, level: Level = "error", **fields: Any) -> None:
    """Log an exception with its type, text and stack."""
    log(
        event,
        level,
        error=f"{type(exc).__name__}: {exc}",
        stack="".join(traceback.format_exception(exc)),
        **fields,
    )


# -- Sentry ------------------------------------------------------------------

_sentry_lock = threading.Lock()
_sentry_dsn: str | None = None  # the DSN the SDK was initialised with, once per process


def init_sentry(settings: Settings) -> bool:
    """Initialise Sentry once per cold start; return whether it is on."""
    global _sentry_dsn
    dsn = secret_value(settings.sentry_dsn)
    if not dsn:
        if _sentry_dsn is not None:  # the DSN was removed (tests, dev reload): switch the SDK off
            with _sentry_lock:
                import sentry_sdk

                sentry_sdk.init(dsn=None)
                _sentry_dsn = None
        return False
    if _sentry_dsn == dsn:
        return True
    with _sentry_lock:
        if _sentry_dsn != dsn:
            import sentry_sdk

            sentry_sdk.init(
                dsn=dsn,
                environment=settings.vercel_env or "development",
                release=settings.vercel_git_commit_sha,
                traces_sample_rate=0.0,
                # A serverless function does not live long enough for the
                # default integrations' background work to pay off.
                default_integrations=False,
                auto_enabling_integrations=False,
                # Stack frames' local variables hold connection strings and
                # tokens (psycopg.connect's `conninfo`, with its password).
                include_local_variables=False,
            )
            _sentry_dsn = dsn
    return True


def capture_job_failure(
    exc: BaseException,
    *,
    job_id: str,
    task_type: str,
    attempts: int,
    max_attempts: int,
    permanent: bool,
) -> None:
    """Report a job failure: `error` when it is final, `warning` when a retry is scheduled."""
    if _sentry_dsn is None:
        return
    import sentry_sdk

    with sentry_sdk.new_scope() as scope:
        scope.set_level("error" if permanent else "warning")
        scope.set_tag("jobId", job_id)
        scope.set_tag("taskType", task_type)
        scope.set_extra("attempts", attempts)
        scope.set_extra("maxAttempts", max_attempts)
        scope.set_extra("permanent", permanent)
        sentry_sdk.capture_exception(exc)


def capture_bug(exc: BaseException, **tags: str) -> None:
    """Report an unexpected exception (an HTTP 500) or an outage (the database unreachable)."""
    if _sentry_dsn is None:
        return
    import sentry_sdk

    with sentry_sdk.new_scope() as scope:
        scope.set_level("error")
        for key, value in tags.items():
            scope.set_tag(key, value)
        sentry_sdk.capture_exception(exc)


def flush_sentry(timeout: float = 2.0) -> None:
    """Send queued events before the response returns: the function may freeze after it."""
    if _sentry_dsn is None:
        return
    import sentry_sdk

    sentry_sdk.flush(timeout=timeout)
