"""Exceptions shared across the bundle, named for what went wrong.

HTTP-facing errors carry their status and the `error` code of the JSON body, so
`lib.http` turns any of them into `{"error", "message", "details"?}` without
knowing where they came from.
"""

from __future__ import annotations

from typing import Any


class ConfigurationError(Exception):
    """An environment variable is missing or malformed. The message names it, never its value."""


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
    status, code = 503, "service_unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"


class ServerMisconfigured(ServiceUnavailable):
    code = "server_misconfigured"


class DatabaseNotMigrated(DatabaseUnavailable):
    """The database answers but lacks the queue's schema (or has an older one)."""

    code = "database_not_migrated"
