"""What the Game Platform jobs report, and the progress they carry: every JSON key camelCase.

The jobs' outputs, a sync run's progress and counts, and a continuation's
cursor are pydantic models with snake_case fields; `OutputModel.dump` is the
one way they become JSON, with camelCase keys (`errorsOmitted`,
`skippedRemoteMissing`). Values (a status such as `skipped_remote_missing`)
are data and keep their spelling.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

MAX_ITEM_ERRORS = 50


class OutputModel(BaseModel):
    """Fields in snake_case, JSON in camelCase; either spelling is read back (a stored cursor, a payload)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def dump(self, *, omit_none: Collection[str] = ()) -> dict[str, Any]:
        """The JSON form; the fields named in `omit_none` are left out when they are None."""
        absent = {name for name in omit_none if getattr(self, name) is None}
        return self.model_dump(mode="json", by_alias=True, exclude=absent or None)


class ItemError(OutputModel):
    """One competitor's, team's or team member's failure, as reported in a job's output."""

    kind: Literal["competitor", "team", "team_member"]
    id: str
    error: str


class ItemCounts(OutputModel):
    """Items a walk handled (users, teams), by the outcomes every walk has; each job's counts add their own."""

    total: int = 0
    skipped_remote_missing: int = 0  # the platform does not know the item (404)
    failed: int = 0
