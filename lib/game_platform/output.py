"""What the Game Platform jobs report, and the progress they carry: every JSON key camelCase.

The jobs' outputs, a sync run's progress and counts, and a continuation's
cursor are `lib.jsonnames.CamelModel`s with snake_case fields and camelCase
JSON keys (`errorsOmitted`, `skippedRemoteMissing`); `OutputModel.dump` is how
they become JSON. Values (a status such as `skipped_remote_missing`) are data
and keep their spelling.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Literal

from pydantic import ConfigDict

from lib.jsonnames import CamelModel

MAX_ITEM_ERRORS = 50


class OutputModel(CamelModel):
    """Built by field name in Python; read back from its camelCase JSON (a stored progress, a cursor)."""

    model_config = ConfigDict(validate_by_name=True, extra="forbid")

    def dump(self, *, omit_none: Collection[str] = ()) -> dict[str, Any]:
        """The JSON form; the fields named in `omit_none` are left out when they are None."""
        absent = {name for name in omit_none if getattr(self, name) is None}
        return self.model_dump(mode="json", exclude=absent or None)


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
