"""Request and response models, written from the vendor's OpenAPI schemas.

Responses ignore fields the schemas do not name (the vendor may add some), and
fail loudly when a field we need is missing or mistyped: a response we cannot
trust is an error, not zeros. Fields we do not need are optional even where
the OpenAPI requires them, because the vendor does leave some out (a user with
no solves may come without `challenge_solves`): one missing detail must not
fail a user. Solves and flash-CTF items keep the item as received
(`raw_payload`), since the app reads fields from it that we do not model.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    model_validator,
)


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _none_as_empty_list(value: Any) -> Any:
    return [] if value is None else value


def _none_as_empty_dict(value: Any) -> Any:
    return {} if value is None else value


# A list the vendor may leave out or send as null: both mean "none".
_Items = BeforeValidator(_none_as_empty_list)


class _Item(_Response):
    """An item kept as received (`raw_payload`): what the app's pages read, including fields we do not model."""

    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_as_received(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        item = handler(data)
        if isinstance(data, dict):
            item._raw = data
        return item

    @property
    def raw_payload(self) -> dict[str, Any]:
        return self._raw


class ChallengeSolve(_Item):
    """The OpenAPI requires every field; only the solve's id is needed to store it, so only the id is required."""

    challenge_solve_id: int
    challenge_id: int | None = None
    challenge_title: str | None = None
    challenge_points: int | None = None
    challenge_category: str | None = None
    timestamp_unix: int | None = None
    challenge_retired: bool | None = None
    nist_nice_work_roles: Annotated[list[str], _Items] = []


class ODLScoresResponse(_Response):
    """`GET /scores/get_odl_scores`: totals over all time; `challenge_solves` after `after_time_unix`.

    The totals are what the sweep writes, so they are required; the vendor is
    known to leave out `challenge_solves` (no solves), and the rest is not needed.
    """

    syned_user_id: str | None = None
    metactf_user_id: int | None = None
    total_challenges_solved: int
    total_points: int
    last_accessed_unix_timestamp: int | None = None
    category_points: Annotated[dict[str, int], BeforeValidator(_none_as_empty_dict)] = {}
    challenge_solves: Annotated[list[ChallengeSolve], _Items] = []


class FlashCTFProgressItem(_Item):
    """One flash CTF: its name and start identify it; the vendor may leave out the rest."""

    flash_ctf_name: str
    flash_ctf_time_start_unix: int
    # Not in the OpenAPI: the vendor sends no end time today. Stored in `ended_at` if it ever does.
    flash_ctf_time_end_unix: int | None = None
    challenges_solved: int | None = None
    challenge_solves: Annotated[list[ChallengeSolve], _Items] = []
    points_earned: int | None = None
    max_points_possible: int | None = None
    rank: int | None = None

    @property
    def event_id(self) -> str:
        return flash_ctf_event_id(self.flash_ctf_name, self.flash_ctf_time_start_unix)

    @property
    def solved(self) -> int:
        """Challenges solved: the vendor's count, else the solves it listed."""
        return self.challenges_solved if self.challenges_solved is not None else len(self.challenge_solves)


def flash_ctf_event_id(name: str, start_unix: int) -> str:
    """A stable id for a flash CTF, which the platform does not give: `<name>:<start>`, the original app's format."""
    return f"{name}:{start_unix}"


class FlashCTFProgressResponse(_Response):
    """`GET /scores/get_flash_ctf_progress`."""

    syned_user_id: str | None = None
    flash_ctfs: Annotated[list[FlashCTFProgressItem], _Items] = []


class TeamAssignmentResponse(_Response):
    syned_user_id: str
    syned_team_id: str | None = None


class TeamAssignmentsListResponse(_Response):
    """`GET /users/get_team_assignments`."""

    assignments: Annotated[list[TeamAssignmentResponse], _Items] = []
    total_count: int | None = None


class UserResponse(_Response):
    """`POST /users`, `GET /users`."""

    metactf_user_id: int
    metactf_username: str
    syned_user_id: str
    last_login_unix_timestamp: int | None = None
    metactf_user_status: Literal["user_created", "pending_approval", "approved", "denied"]


class TeamResponse(_Response):
    """`POST /teams`."""

    metactf_team_id: int
    metactf_coach_id: str
    syned_team_id: str
    team_name: str
    division: Literal["high_school", "middle_school", "college"]
    affiliation: str


class UserCreate(_Request):
    """`POST /users` body."""

    first_name: str = Field(min_length=1)
    last_name: str = Field(min_length=1)
    email: str = Field(min_length=3, pattern=r"^[^@\s]+@[^@\s]+$")
    role: Literal["coach", "user"]
    syned_user_id: str = Field(min_length=1)
    preferred_username: str | None = None
    syned_school_id: str | None = None
    syned_region_id: str | None = None
    syned_coach_user_id: str | None = None


class TeamCreate(_Request):
    """`POST /teams` body."""

    syned_coach_user_id: str = Field(min_length=1)
    syned_team_id: str = Field(min_length=1)
    team_name: str = Field(min_length=1)
    affiliation: str = Field(min_length=1)
    division: Literal["high_school", "middle_school", "college"]


class ValidationErrorItem(_Response):
    loc: list[str | int]
    msg: str
    type: str


class HTTPValidationError(_Response):
    """A 422 body: FastAPI's list of field errors."""

    detail: list[ValidationErrorItem] = []
