"""What can go wrong talking to the Game Platform, named for what the caller should do.

- `RemoteMissing` is not an exception: a 404 on a user or team is an answer
  ("the platform does not know this id"), returned as a typed result.
- `NotApproved` is not one either: a 403 on one user's scores means the
  platform has not approved that user (yet); the other users are unaffected.
- `GamePlatformAuthError`: the credentials are wrong; no call will succeed
  until an operator fixes `GAME_PLATFORM_API_TOKEN`. (A 403 on every user's
  scores is that too: the jobs decide it, see `fetching.Drain`.)
- `GamePlatformUnavailable` (and `GamePlatformRateLimited`): the vendor did not
  answer usefully after the client's retries; a later attempt may succeed.
- `GamePlatformRejected`: the vendor refused this request (422 and other 4xx);
  its `detail` is in the message.
- `GamePlatformBadResponse`: a 2xx whose body does not match the schema.
- `DeadlineReached`: the job's time budget ran out before the call could finish;
  the item was not processed and belongs to the continuation.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RemoteMissing:
    """The platform answered 404 for this id: the user (or team) does not exist there."""

    resource: str  # "user" | "team"
    identifier: str
    detail: str

    def describe(self) -> str:
        return f"{self.resource} {self.identifier!r} not found on the Game Platform ({self.detail})"


@dataclass(frozen=True)
class NotApproved:
    """The platform answered 403 for this user's scores: it has not approved the user, so it shows them nothing."""

    identifier: str
    detail: str

    def describe(self) -> str:
        return f"user {self.identifier!r} is not approved on the Game Platform (HTTP 403: {self.detail})"


class GamePlatformError(Exception):
    """Base class: the call did not produce a usable answer."""


class GamePlatformAuthError(GamePlatformError):
    """401, a 403 where no per-user refusal is expected, or no token configured at all."""


class GamePlatformUnavailable(GamePlatformError):
    """5xx, 429 or a network error that outlasted the retries."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class GamePlatformRateLimited(GamePlatformUnavailable):
    """429 that outlasted the retries, or whose Retry-After is too long to wait inside this job."""


class GamePlatformRejected(GamePlatformError):
    """A 4xx other than 401/403/404 (notably 422): the request itself is wrong."""

    def __init__(self, message: str, *, status: int, detail: object = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class GamePlatformBadResponse(GamePlatformError):
    """A success status whose body is not what the schema promises."""


class DeadlineReached(GamePlatformError):
    """The call was not made (or not retried) because the job's time budget is spent."""


class GamePlatformNotConfigured(GamePlatformAuthError):
    """No token is configured: nothing can be called until an operator sets one."""
