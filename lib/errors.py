"""Exceptions shared across the bundle, named for what went wrong, one section per kind.

- Configuration: a setting is missing or malformed (`lib.settings`, `lib.db`, `lib.auth`).
- Database: what `lib.db` raises when the database cannot serve a statement.
- Job control: what a job handler raises to say how its job ends (`lib.worker`).
- HTTP answers: `ApiError` and its kinds, which carry their status and the
  `error` code of the JSON body.

Only the last kind knows HTTP. `lib.http`, the edge, answers the first two with
a 503 and an error code of their own (`server_misconfigured`,
`database_unavailable`, …); the CLI maps them to its exit codes; jobs see them
as transient failures.
"""

from __future__ import annotations

from typing import Any

# -- configuration --------------------------------------------------------------


class ConfigurationError(Exception):
    """An environment variable is missing or malformed. The message names it, never its value."""


# -- database ---------------------------------------------------------------------


class DatabaseError(Exception):
    """The database could not serve a statement, for a reason outside the statement itself."""


class DatabaseUnavailable(DatabaseError):
    """The database is unreachable, or the connection failed."""


class StatementTimeout(DatabaseUnavailable):
    """A statement ran past DB_STATEMENT_TIMEOUT_SECONDS and was cancelled."""


class DatabaseNotMigrated(DatabaseError):
    """The database answers but lacks the queue's schema (or has an older one)."""


# -- job control --------------------------------------------------------------------
# A handler raises these to tell the worker how its job ends (lib.jobs.context);
# any other exception is a transient failure, retried with the backoff policy.


class PermanentJobError(Exception):
    """The job cannot succeed by trying again; it fails for good."""


class JobNotConfigured(Exception):
    """This worker lacks a setting the job needs (a vendor token): a configuration error, not the job's.

    The worker hands the job back unstarted, pending with its attempt not spent,
    and reports the error (log, Sentry warning, the invocation's results): a
    worker that is configured runs it, and no amount of failing here uses up its
    attempts. Raise it only before the handler has changed anything.
    """


class RetryJobLater(Exception):
    """The job should be tried again after `retry_in_seconds` (e.g. an upstream Retry-After)."""

    def __init__(self, message: str, retry_in_seconds: float) -> None:
        super().__init__(message)
        self.retry_in_seconds = retry_in_seconds


# -- HTTP answers -------------------------------------------------------------------


class ApiError(Exception):
    """An error answered to the caller as JSON; never reported as a bug."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.extra = extra

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        body.update(self.extra)
        return body


class InvalidRequest(ApiError):
    status, code = 400, "invalid_request"


class InvalidJson(ApiError):
    status, code = 400, "invalid_json"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class MethodNotAllowed(ApiError):
    status, code = 405, "method_not_allowed"


class Conflict(ApiError):
    status, code = 409, "conflict"


class LengthRequired(ApiError):
    status, code = 411, "length_required"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class ServiceUnavailable(ApiError):
    """A service the endpoint needs (Supabase Auth) cannot answer now."""

    status, code = 503, "service_unavailable"
