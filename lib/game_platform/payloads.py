"""What may be asked of the Game Platform jobs: the payloads' public fields.

Kept apart from the handlers (which import the vendor client and httpx) so the
admin trigger endpoints (and the CLI) validate a request with these very models and store a payload with every
default filled in (`SyncRequest().to_payload() == {"dryRun": False, "coachId": None,
"forceFullSync": False, "forceFlashCtfSync": False}`)
without loading the client. The handlers' payload models extend these with the
continuation cursor, which only a handler ever writes.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from pydantic import ConfigDict, Field, StrictBool, StrictInt

from lib.jsonnames import CamelModel

SYNC_TASK_TYPE = "game_platform_sync"
TOTALS_SWEEP_TASK_TYPE = "game_platform_totals_sweep"

DEFAULT_SWEEP_BATCH_SIZE = 100
MAX_SWEEP_BATCH_SIZE = 1000


class GamePlatformRequest(CamelModel):
    """What both Game Platform jobs take: a dry run, and a coach to limit them to."""

    # Callers use the camelCase names only (CamelModel): `dry_run` in a request is an unknown field.
    model_config = ConfigDict(extra="forbid", frozen=True)

    dry_run: StrictBool = Field(default=False, description="report what would change; write nothing")
    coach_id: UUID | None = Field(default=None, description="only this coach's competitors and teams")

    def to_payload(self) -> dict[str, Any]:
        """The job payload: every public field, defaults filled in, camelCase keys."""
        return self.model_dump(mode="json", exclude={"cursor"})


class SyncRequest(GamePlatformRequest):
    """`game_platform_sync`: an incremental sync of every linked competitor, or of one coach's."""

    force_full_sync: StrictBool = Field(
        default=False,
        description="ignore the incremental window: fetch every user's solves from the beginning",
    )
    force_flash_ctf_sync: StrictBool = Field(
        default=False,
        description="fetch every user's flash-CTF progress, news of a flash CTF or not",
    )


class SweepRequest(GamePlatformRequest):
    """`game_platform_totals_sweep`: refresh the totals of up to `batchSize` flagged users."""

    batch_size: Annotated[StrictInt, Field(ge=1, le=MAX_SWEEP_BATCH_SIZE)] = Field(
        default=DEFAULT_SWEEP_BATCH_SIZE, description="users to refresh per job, at most"
    )
    force_all: StrictBool = Field(
        default=False,
        description="every competitor with a platform id, flagged or not, `batchSize` per job with continuations",
    )
