"""The Game Platform HTTP client.

One `GamePlatformClient` per job: it owns one httpx connection pool sized to
the job's concurrency and is safe to share between the job's worker threads.

Retries: 5xx, 429 and network errors are retried with capped, jittered
exponential backoff; a 429's `Retry-After` (seconds or an HTTP date) is honoured
when it is short enough to wait inside a job, and otherwise surfaces as
`GamePlatformRateLimited(retry_after=...)` so the job can be rescheduled for
then. Requests that are not idempotent (creating users and teams) are retried
only when they surely never reached the vendor (connect errors, 429). No wait or
request outlives the job's deadline: the call raises `DeadlineReached` instead,
and the item is left for the continuation job.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from lib.game_platform.errors import (
    DeadlineReached,
    GamePlatformAuthError,
    GamePlatformBadResponse,
    GamePlatformNotConfigured,
    GamePlatformRateLimited,
    GamePlatformRejected,
    GamePlatformUnavailable,
    NotApproved,
    RemoteMissing,
)
from lib.game_platform.models import (
    FlashCTFProgressResponse,
    HTTPValidationError,
    ODLScoresResponse,
    TeamAssignmentResponse,
    TeamAssignmentsListResponse,
    TeamCreate,
    TeamResponse,
    UserCreate,
    UserResponse,
)
from lib.settings import Settings, secret_value
from lib.validation import field_errors, summary

M = TypeVar("M", bound=BaseModel)

TOKEN_VARIABLE = "GAME_PLATFORM_API_TOKEN"  # noqa: S105 - the variable's name, not a secret
USER_AGENT = "job-queue-bundle/1 (+game_platform_sync)"


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one call tries before giving up.

    Four attempts with delays around 0.5, 1 and 2 seconds ride out a vendor
    restart or a dropped connection without holding a worker thread for long; a
    longer outage is the job's business (it fails and the queue retries it
    minutes later). Jitter keeps the job's threads from retrying in lockstep.
    """

    max_attempts: int = 4
    base_seconds: float = 0.5
    cap_seconds: float = 8.0
    # A Retry-After longer than this is not slept through inside a job: the job
    # is rescheduled for then instead (see GamePlatformRateLimited).
    max_retry_after_seconds: float = 30.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def backoff(self, attempt: int) -> float:
        """Delay after the given (1-based) failed attempt: half fixed, half random."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2.0 ** max(attempt - 1, 0))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date; None if absent or garbled."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def describe_detail(response: httpx.Response) -> str:
    """The vendor's error text: FastAPI's `detail` (a string, or a list of field errors), else the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        try:
            items = HTTPValidationError.model_validate(body).detail
        except ValidationError:
            return str(detail)[:500]
        return "; ".join(f"{'.'.join(str(p) for p in item.loc)}: {item.msg}" for item in items)
    return response.text[:500]


class GamePlatformClient:
    """Typed calls to the vendor.

    Methods that take a user or team id return `RemoteMissing` on 404; the two
    score endpoints return `NotApproved` on 403 (the vendor's answer for a user
    it has not approved). A 401, or a 403 anywhere else, is a
    `GamePlatformAuthError`.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout_seconds: float = 15.0,
        concurrency: int = 8,
        retry: RetryPolicy | None = None,
        deadline: float | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not token:
            raise GamePlatformNotConfigured(f"{TOKEN_VARIABLE} is not set: the Game Platform cannot be called.")
        self.timeout_seconds = timeout_seconds
        self.retry = retry or RetryPolicy()
        self.deadline = deadline  # clock() value after which no request starts or waits
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self.calls = 0  # HTTP exchanges made, retries included (benchmarks, tests)
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json", "User-Agent": USER_AGENT},
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            timeout=self._timeout(timeout_seconds),
            transport=transport,
            follow_redirects=False,
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, deadline: float | None = None) -> GamePlatformClient:
        return cls(
            settings.game_platform_api_base_url,
            secret_value(settings.game_platform_api_token),
            timeout_seconds=settings.game_platform_timeout_seconds,
            concurrency=settings.game_platform_concurrency,
            retry=RetryPolicy(
                max_attempts=settings.game_platform_max_attempts,
                base_seconds=settings.game_platform_retry_base_seconds,
            ),
            deadline=deadline,
        )

    def __enter__(self) -> GamePlatformClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- the vendor's endpoints -------------------------------------------------

    def get_odl_scores(
        self, syned_user_id: str, after_time_unix: int | None = None
    ) -> ODLScoresResponse | RemoteMissing | NotApproved:
        """Totals over all time, and the solves after `after_time_unix` (all of them when None)."""
        params: dict[str, Any] = {"syned_user_id": syned_user_id}
        if after_time_unix is not None:
            params["after_time_unix"] = after_time_unix
        return self._call_scores(
            "scores/get_odl_scores",
            ODLScoresResponse,
            params=params,
            syned_user_id=syned_user_id,
        )

    def get_flash_ctf_progress(self, syned_user_id: str) -> FlashCTFProgressResponse | RemoteMissing | NotApproved:
        """A 404 here usually means "no flash-CTF progress", not an unknown user: the caller decides."""
        return self._call_scores(
            "scores/get_flash_ctf_progress",
            FlashCTFProgressResponse,
            params={"syned_user_id": syned_user_id},
            syned_user_id=syned_user_id,
        )

    def get_team_assignments(self, syned_team_id: str) -> TeamAssignmentsListResponse | RemoteMissing:
        return self._call(
            "GET",
            "users/get_team_assignments",
            TeamAssignmentsListResponse,
            params={"syned_team_id": syned_team_id},
            missing=("team", syned_team_id),
        )

    def assign_team(self, syned_team_id: str, syned_user_id: str) -> TeamAssignmentResponse | RemoteMissing:
        """Assigning a user to the team it is already in changes nothing, so retrying is safe."""
        return self._call(
            "POST",
            "users/assign_team",
            TeamAssignmentResponse,
            json={"syned_team_id": syned_team_id, "syned_user_id": syned_user_id},
            missing=("user or team", f"{syned_user_id} -> {syned_team_id}"),
        )

    def delete_assignment(self, syned_user_id: str) -> RemoteMissing | None:
        """Take the user off whatever team the platform has them on (a user has at most one).

        Safe to retry: a second delete finds no assignment, a 404, which the
        caller takes as done. The body is not needed, so it is not parsed.
        """
        answer = self._exchange(
            "POST",
            "users/delete_assignment",
            params=None,
            json={"syned_user_id": syned_user_id},
            missing=("assignment of user", syned_user_id),
            refused_user=None,
            idempotent=True,
        )
        return answer if isinstance(answer, RemoteMissing) else None

    def get_user(self, syned_user_id: str) -> UserResponse | RemoteMissing:
        return self._call(
            "GET", "users", UserResponse, params={"syned_user_id": syned_user_id}, missing=("user", syned_user_id)
        )

    def create_user(self, user: UserCreate) -> UserResponse:
        result = self._call("POST", "users", UserResponse, json=user.model_dump(), idempotent=False)
        assert not isinstance(result, RemoteMissing)
        return result

    def create_team(self, team: TeamCreate) -> TeamResponse:
        result = self._call("POST", "teams", TeamResponse, json=team.model_dump(), idempotent=False)
        assert not isinstance(result, RemoteMissing)
        return result

    # -- one call, with retries ---------------------------------------------------

    def _call_scores(
        self, path: str, model: type[M], *, params: Mapping[str, Any], syned_user_id: str
    ) -> M | RemoteMissing | NotApproved:
        """A score endpoint: 404 is an unknown user, 403 a user the platform has not approved."""
        return self._parse(
            "GET",
            path,
            model,
            self._exchange(
                "GET",
                path,
                params=params,
                json=None,
                missing=("user", syned_user_id),
                refused_user=syned_user_id,
                idempotent=True,
            ),
        )

    def _call(
        self,
        method: str,
        path: str,
        model: type[M],
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        missing: tuple[str, str] | None = None,
        idempotent: bool = True,
    ) -> M | RemoteMissing:
        response = self._exchange(
            method, path, params=params, json=json, missing=missing, refused_user=None, idempotent=idempotent
        )
        parsed = self._parse(method, path, model, response)
        assert not isinstance(parsed, NotApproved)  # only asked for with refused_user
        return parsed

    @staticmethod
    def _parse(
        method: str, path: str, model: type[M], response: httpx.Response | RemoteMissing | NotApproved
    ) -> M | RemoteMissing | NotApproved:
        if isinstance(response, RemoteMissing | NotApproved):
            return response
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            problems = summary(field_errors(exc, whole="body")[:5])
            raise GamePlatformBadResponse(
                f"{method} /{path} answered {response.status_code} with a body that is not a {model.__name__}: "
                f"{problems}"
            ) from None

    def _exchange(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        json: Any,
        missing: tuple[str, str] | None,
        refused_user: str | None,
        idempotent: bool,
    ) -> httpx.Response | RemoteMissing | NotApproved:
        where = f"{method} /{path}"
        attempt = 0
        while True:
            attempt += 1
            last_try = attempt >= self.retry.max_attempts
            timeout, cut_by_deadline = self._attempt_timeout(where)
            try:
                response = self._http.request(method, path, params=params, json=json, timeout=timeout)
            except httpx.TransportError as exc:
                if cut_by_deadline and isinstance(exc, httpx.TimeoutException):
                    raise DeadlineReached(f"{where}: the job's time budget ran out mid-request") from exc
                error = GamePlatformUnavailable(f"{where}: {type(exc).__name__}: {exc or 'network error'}")
                surely_unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if last_try or not (idempotent or surely_unsent):
                    raise error from exc
                self._wait(self.retry.backoff(attempt), where)
                continue
            with self._lock:
                self.calls += 1

            status = response.status_code
            if 200 <= status < 300:
                return response
            detail = describe_detail(response)
            if status == 403 and refused_user is not None:
                return NotApproved(identifier=refused_user, detail=detail)
            if status in (401, 403):
                raise GamePlatformAuthError(
                    f"The Game Platform refused our credentials (HTTP {status} on {where}: {detail}). "
                    f"Check {TOKEN_VARIABLE}."
                )
            if status == 404 and missing is not None:
                return RemoteMissing(resource=missing[0], identifier=missing[1], detail=detail)
            if status == 429:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                too_long = retry_after is not None and retry_after > self.retry.max_retry_after_seconds
                if last_try or too_long:
                    raise GamePlatformRateLimited(
                        f"{where}: rate limited (HTTP 429, Retry-After {response.headers.get('Retry-After')!r})",
                        status=429,
                        retry_after=retry_after,
                    )
                self._wait(retry_after if retry_after is not None else self.retry.backoff(attempt), where)
                continue
            if status >= 500:
                if last_try or not idempotent:
                    raise GamePlatformUnavailable(f"{where}: HTTP {status}: {detail}", status=status)
                self._wait(self.retry.backoff(attempt), where)
                continue
            raise GamePlatformRejected(f"{where} was rejected (HTTP {status}): {detail}", status=status, detail=detail)

    def _attempt_timeout(self, where: str) -> tuple[httpx.Timeout, bool]:
        """This attempt's timeout: the configured one, shortened to end at the deadline."""
        if self.deadline is None:
            return self._timeout(self.timeout_seconds), False
        remaining = self.deadline - self._clock()
        if remaining <= 0:
            raise DeadlineReached(f"{where}: the job's time budget is spent")
        if remaining < self.timeout_seconds:
            return self._timeout(remaining), True
        return self._timeout(self.timeout_seconds), False

    def _wait(self, seconds: float, where: str) -> None:
        if self.deadline is not None and self._clock() + seconds >= self.deadline:
            raise DeadlineReached(f"{where}: retrying in {seconds:.1f}s would overrun the job's time budget")
        self._sleep(seconds)

    @staticmethod
    def _timeout(seconds: float) -> httpx.Timeout:
        # Connecting should be quick; a slow connect means the vendor is unreachable.
        return httpx.Timeout(seconds, connect=min(seconds, 5.0))
