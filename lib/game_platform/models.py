"""Request and response models, written from the vendor's OpenAPI schemas.

Responses ignore fields the schemas do not name (the vendor may add some), and
fail loudly when a required one is missing or mistyped: a response we cannot
trust is an error, not zeros.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChallengeSolve(_Response):
    challenge_solve_id: int
    challenge_id: int
    challenge_title: str
    challenge_points: int
    challenge_category: str
    timestamp_unix: int
    challenge_retired: bool
    nist_nice_work_roles: list[str]


class ODLScoresResponse(_Response):
    """`GET /scores/get_odl_scores`: totals over all time; `challenge_solves` after `after_time_unix`."""

    syned_user_id: str | None = None
    metactf_user_id: int
    total_challenges_solved: int
    total_points: int
    last_accessed_unix_timestamp: int
    category_points: dict[str, int]
    challenge_solves: list[ChallengeSolve]


class FlashCTFProgressItem(_Response):
    flash_ctf_name: str
    flash_ctf_time_start_unix: int
    challenges_solved: int
    challenge_solves: list[ChallengeSolve]
    points_earned: int
    rank: int

    @property
    def event_id(self) -> str:
        return flash_ctf_event_id(self.flash_ctf_time_start_unix, self.flash_ctf_name)


def flash_ctf_event_id(start_unix: int, name: str) -> str:
    """A stable id for a flash CTF, which the platform does not give: its start time and name."""
    return f"{start_unix}:{name}"


class FlashCTFProgressResponse(_Response):
    """`GET /scores/get_flash_ctf_progress`."""

    syned_user_id: str
    flash_ctfs: list[FlashCTFProgressItem]


class TeamAssignmentResponse(_Response):
    syned_user_id: str
    syned_team_id: str | None = None


class TeamAssignmentsListResponse(_Response):
    """`GET /users/get_team_assignments`."""

    assignments: list[TeamAssignmentResponse]
    total_count: int


class UserResponse(_Response):
    """`POST /users`, `GET /users`."""

    metactf_user_id: int
    metactf_username: str
    syned_user_id: str
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
