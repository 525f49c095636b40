"""The domain SQL of the Game Platform jobs: the only Python that knows these tables.

Every statement is a named query in `queries.sql`. Writes are batched: each
method that takes rows sends them as one JSON array, unpacked server-side with
`jsonb_to_recordset`, so a batch of a hundred users costs one round trip per
table rather than one per row. Callers group a batch's writes in one
transaction together with the sync run's checkpoint.

The rows are typed (`SolveRow`, `SyncStateRow`, …): a row's fields are the one
declaration of its keys. Each recordset's column list in `queries.sql` is
checked against its row type's fields when this module is imported, so a key
misspelt on either side fails the first test that loads the store instead of
silently arriving as NULL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol, TypeVar
from uuid import UUID

from psycopg.types.json import Jsonb

from lib.db import Database
from lib.sql import Queries, load_queries

QUERIES = load_queries(__file__, "queries.sql")

T = TypeVar("T")
K = TypeVar("K")

# -- values ------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncRun:
    """A sync run as a job resuming it finds it."""

    id: int
    status: str  # running | completed | failed
    job_id: UUID | None  # the job driving it
    progress: dict[str, Any]
    owned: bool  # running, and driven by the job that asked


@dataclass(frozen=True)
class ScopeHeld:
    """A running sync run of the scope a new one would have, whose job is still pending or processing."""

    sync_run_id: int
    job_id: UUID
    job_status: str


@dataclass(frozen=True)
class LinkedUser:
    """A platform user in scope and the local competitors linked to it."""

    syned_user_id: str
    competitor_ids: tuple[UUID, ...]
    last_synced_at: datetime | None


@dataclass(frozen=True)
class TeamMember:
    competitor_id: UUID
    syned_user_id: str | None


@dataclass(frozen=True)
class LinkedTeam:
    id: UUID
    game_platform_id: str
    members: tuple[TeamMember, ...]
    coach_approved: bool = True


@dataclass(frozen=True)
class FlaggedUser:
    """A user for the sweep: flagged (`flagged_since` set), or any linked user under `forceAll`."""

    syned_user_id: str
    flagged_since: datetime | None
    requested_at: datetime | None
    competitor_ids: tuple[UUID, ...]


@dataclass(frozen=True)
class SolveChanges:
    """One user's solves in a batch: how many were new, how many stored ones the vendor changed."""

    new: int
    changed: int


# -- rows written --------------------------------------------------------------------


class SolveRow(NamedTuple):
    """A challenge solve as received, for `upsert_solves` (and `count_solve_changes` in dry runs)."""

    syned_user_id: str
    challenge_solve_id: int
    source: str  # 'odl' | 'flash_ctf'
    flash_ctf_event_id: str | None
    challenge_id: int | None
    challenge_title: str | None
    challenge_category: str | None
    challenge_points: int | None
    challenge_retired: bool | None
    nist_nice_work_roles: list[str]
    timestamp_unix: int | None
    raw_payload: dict[str, Any]


class FlashEventRow(NamedTuple):
    """A user's flash-CTF result as received, for `upsert_flash_events` (and its dry-run count)."""

    syned_user_id: str
    event_id: str
    flash_ctf_name: str
    start_unix: int
    end_unix: int | None
    challenges_solved: int
    points_earned: int | None
    max_points_possible: int | None
    rank: int | None
    raw_payload: dict[str, Any]


class SyncStateRow(NamedTuple):
    """How a user's sync went; `flag` raises `needs_totals_refresh`."""

    syned_user_id: str
    synced: bool
    result: str  # updated | unchanged | remote_missing | not_approved | failed
    error: str | None
    flag: bool
    remote_accessed_at: datetime | None = None


class ActivityRow(NamedTuple):
    competitor_id: UUID
    last_activity: datetime


class CompetitorMark(NamedTuple):
    """A competitor's `game_platform_synced_at` (when `synced`) and `game_platform_sync_error`."""

    competitor_id: UUID
    synced: bool
    error: str | None


class TeamMark(NamedTuple):
    team_id: UUID
    synced: bool
    error: str | None


class TeamMemberMark(NamedTuple):
    team_id: UUID
    competitor_id: UUID
    synced: bool
    error: str | None


class StatsRow(NamedTuple):
    """A competitor's totals, as the sweep writes them to `game_platform_stats`."""

    competitor_id: UUID
    challenges_completed: int
    monthly_ctf_challenges: int
    total_score: int
    last_activity: datetime | None


class ClearedFlag(NamedTuple):
    """A user the sweep is done with: its flag is cleared if not raised again since `requested_at`."""

    syned_user_id: str
    requested_at: datetime | None
    refreshed: bool
    error: str | None = None


class TotalsError(NamedTuple):
    """A user whose totals could not be fetched: the flag stays, the error is kept."""

    syned_user_id: str
    error: str


# The row type of each query that reads `%(rows)s` through `jsonb_to_recordset`.
# A write lists every field of its row type; a dry-run count reads some of them.
ROW_TYPES: dict[str, tuple[type[tuple[Any, ...]], bool]] = {
    "upsert_solves": (SolveRow, True),
    "count_solve_changes": (SolveRow, False),
    "upsert_flash_events": (FlashEventRow, True),
    "count_changed_flash_events": (FlashEventRow, False),
    "record_sync_state": (SyncStateRow, True),
    "bump_last_activity": (ActivityRow, True),
    "mark_competitors": (CompetitorMark, True),
    "mark_teams": (TeamMark, True),
    "mark_team_members": (TeamMemberMark, True),
    "write_stats": (StatsRow, True),
    "clear_flags": (ClearedFlag, True),
    "record_totals_errors": (TotalsError, True),
}

_RECORDSET = re.compile(r"jsonb_to_recordset\(%\(rows\)s::jsonb\)\s+as\s+r\(([^)]*)\)", re.IGNORECASE)


def recordset_columns(query: str) -> tuple[str, ...]:
    """The column names of the query's `jsonb_to_recordset(%(rows)s::jsonb) as r(…)`, in order."""
    match = _RECORDSET.search(query)
    if match is None:
        raise ValueError("no `jsonb_to_recordset(%(rows)s::jsonb) as r(…)` in the query")
    return tuple(column.split()[0] for column in match.group(1).split(","))


def recordset_mismatches(queries: Queries = QUERIES) -> list[str]:
    """Each query whose recordset columns disagree with its row type's fields, and how."""
    problems = []
    for name, (row_type, complete) in ROW_TYPES.items():
        columns = recordset_columns(queries[name])
        fields: tuple[str, ...] = getattr(row_type, "_fields")  # noqa: B009 - a NamedTuple class's fields
        unknown = [c for c in columns if c not in fields]
        unread = [f for f in fields if f not in columns] if complete else []
        if unknown or unread or len(set(columns)) != len(columns):
            problems.append(f"{queries.source}: {name} reads {list(columns)}, {row_type.__name__} has {list(fields)}")
    return problems


_MISMATCHES = recordset_mismatches()
if _MISMATCHES:
    raise RuntimeError("; ".join(_MISMATCHES))


def keyset(
    page: Callable[[K | None, int], Sequence[T]],
    key: Callable[[T], K],
    *,
    after: K | None,
    page_size: int,
    limit: int | None = None,
) -> Iterator[T]:
    """Every item after `after` (at most `limit`), read a page at a time: `page(after, size)` in key order."""
    left = limit
    while left is None or left > 0:
        size = page_size if left is None else min(page_size, left)
        items = page(after, size)
        yield from items
        if left is not None:
            left -= len(items)
        if len(items) < size:
            return
        after = key(items[-1])


class Row(Protocol):
    """A typed write row: a NamedTuple, whose fields name the recordset's columns."""

    def _asdict(self) -> dict[str, Any]: ...


def _rows(rows: Sequence[Row]) -> Jsonb:
    """Typed rows as the one JSON array `jsonb_to_recordset` unpacks: each row an object of its fields."""
    return Jsonb([row._asdict() for row in rows], dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


def _solve_changes(rows: list[dict[str, Any]]) -> dict[str, SolveChanges]:
    return {r["syned_user_id"]: SolveChanges(r["new_solves"], r["changed_solves"]) for r in rows}


def _flagged_user(row: dict[str, Any]) -> FlaggedUser:
    return FlaggedUser(
        row["syned_user_id"],
        row["needs_totals_refresh_since"],
        row["totals_refresh_requested_at"],
        tuple(row["competitor_ids"] or ()),
    )


def _flag_key(user: FlaggedUser) -> tuple[datetime, str]:
    assert user.flagged_since is not None  # a flagged user says since when (a check constraint)
    return (user.flagged_since, user.syned_user_id)


class GamePlatformStore:
    """The domain tables as seen through the job's connection."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def now(self) -> datetime:
        """The database's clock: every stored time comes from it, so cursors compare like for like."""
        row = self.db.fetchone(QUERIES["now"])
        assert row is not None
        now: datetime = row["now"]
        return now

    def _write(self, query: str, rows: Sequence[Row], **params: Any) -> None:
        if rows:
            self.db.execute(QUERIES[query], {"rows": _rows(rows), **params})

    def _write_returning(self, query: str, rows: Sequence[Row]) -> list[dict[str, Any]]:
        return self.db.fetchall(QUERIES[query], {"rows": _rows(rows)}) if rows else []

    # -- sync runs -----------------------------------------------------------------

    def has_completed_sync_run(self, coach_id: UUID | None) -> bool:
        row = self.db.fetchone(QUERIES["has_completed_sync_run"], {"coach_id": coach_id})
        return bool(row and row["found"])

    def start_sync_run(
        self,
        *,
        job_id: UUID,
        coach_id: UUID | None,
        full_sync: bool,
        started_at: datetime,
        progress: dict[str, Any],
    ) -> int:
        """A new sync run driven by `job_id` (which started it); its id."""
        row = self.db.fetchone(
            QUERIES["start_sync_run"],
            {
                "coach_id": coach_id,
                "job_id": job_id,
                "full_sync": full_sync,
                "started_at": started_at,
                "progress": Jsonb(progress),
            },
        )
        assert row is not None
        sync_run_id: int = row["id"]
        return sync_run_id

    def resume_sync_run(self, job_id: UUID, sync_run_id: int | None) -> SyncRun | None:
        """The sync run a continuation names (or, without one, the one this job started), if any."""
        row = self.db.fetchone(QUERIES["resume_sync_run"], {"job_id": job_id, "sync_run_id": sync_run_id})
        return SyncRun(**row) if row else None

    def supersede_stale_sync_run(self, coach_id: UUID | None) -> ScopeHeld | None:
        """Fail the scope's running sync run if its job is gone; the one a live job still drives, if any."""
        row = self.db.fetchone(QUERIES["supersede_sync_run"], {"coach_id": coach_id})
        return ScopeHeld(**row) if row else None

    def _fenced(self, query: str, params: dict[str, Any]) -> bool:
        row = self.db.fetchone(QUERIES[query], params)
        return bool(row and row["done"])

    def checkpoint_sync_run(
        self, sync_run_id: int, job_id: UUID, progress: dict[str, Any], counts: dict[str, Any]
    ) -> bool:
        return self._fenced(
            "checkpoint_sync_run",
            {"sync_run_id": sync_run_id, "job_id": job_id, "progress": Jsonb(progress), "counts": Jsonb(counts)},
        )

    def hand_over_sync_run(
        self, sync_run_id: int, job_id: UUID, next_job_id: UUID, progress: dict[str, Any], counts: dict[str, Any]
    ) -> bool:
        return self._fenced(
            "hand_over_sync_run",
            {
                "sync_run_id": sync_run_id,
                "job_id": job_id,
                "next_job_id": next_job_id,
                "progress": Jsonb(progress),
                "counts": Jsonb(counts),
            },
        )

    def finish_sync_run(
        self,
        sync_run_id: int,
        job_id: UUID,
        *,
        status: str,
        progress: dict[str, Any],
        counts: dict[str, Any],
        error: str | None = None,
    ) -> bool:
        return self._fenced(
            "finish_sync_run",
            {
                "sync_run_id": sync_run_id,
                "job_id": job_id,
                "status": status,
                "progress": Jsonb(progress),
                "counts": Jsonb(counts),
                "error": error,
            },
        )

    def note_sync_run_error(self, sync_run_id: int, job_id: UUID, error: str) -> bool:
        return self._fenced("note_sync_run_error", {"sync_run_id": sync_run_id, "job_id": job_id, "error": error})

    # -- competitors -----------------------------------------------------------------

    def linked_users_page(self, coach_id: UUID | None, after: str | None, limit: int) -> list[LinkedUser]:
        rows = self.db.fetchall(QUERIES["linked_users_page"], {"coach_id": coach_id, "after": after, "limit": limit})
        return [LinkedUser(r["syned_user_id"], tuple(r["competitor_ids"]), r["last_synced_at"]) for r in rows]

    def linked_users(self, coach_id: UUID | None, *, after: str | None, page_size: int) -> Iterator[LinkedUser]:
        """Every linked platform user in scope after `after`, in platform-id order."""
        return keyset(
            lambda after, limit: self.linked_users_page(coach_id, after, limit),
            lambda user: user.syned_user_id,
            after=after,
            page_size=page_size,
        )

    def sentinel_users(self, coach_id: UUID | None, limit: int) -> list[str]:
        rows = self.db.fetchall(QUERIES["sentinel_users"], {"coach_id": coach_id, "limit": limit})
        return [r["syned_user_id"] for r in rows]

    def recorded_flash_events(self, syned_user_ids: Sequence[str]) -> dict[tuple[str, str], int]:
        """(user, event id) → challenges solved, as recorded."""
        rows = self.db.fetchall(QUERIES["recorded_flash_events"], {"syned_user_ids": list(syned_user_ids)})
        return {(r["syned_user_id"], r["event_id"]): r["challenges_solved"] for r in rows}

    def competitors_with_totals(self, competitor_ids: Sequence[UUID]) -> set[UUID]:
        """Those of the competitors whose totals a sweep has written at least once."""
        if not competitor_ids:
            return set()
        rows = self.db.fetchall(QUERIES["competitors_with_totals"], {"competitor_ids": list(competitor_ids)})
        return {r["competitor_id"] for r in rows}

    def upsert_solves(self, solves: Sequence[SolveRow]) -> dict[str, SolveChanges]:
        """Insert new solves, refresh changed ones; per user, how many of each."""
        return _solve_changes(self._write_returning("upsert_solves", solves))

    def count_solve_changes(self, solves: Sequence[SolveRow]) -> dict[str, SolveChanges]:
        """What `upsert_solves` would do, without writing (dry runs)."""
        return _solve_changes(self._write_returning("count_solve_changes", solves))

    def upsert_flash_events(self, events: Sequence[FlashEventRow]) -> dict[str, int]:
        """Insert or refresh events; per user, how many were new or changed."""
        return {r["syned_user_id"]: int(r["changed"]) for r in self._write_returning("upsert_flash_events", events)}

    def count_changed_flash_events(self, events: Sequence[FlashEventRow]) -> dict[str, int]:
        """What `upsert_flash_events` would count, without writing (dry runs)."""
        rows = self._write_returning("count_changed_flash_events", events)
        return {r["syned_user_id"]: int(r["changed"]) for r in rows}

    def record_sync_state(self, states: Sequence[SyncStateRow], sync_run_started_at: datetime) -> None:
        self._write("record_sync_state", states, sync_run_started_at=sync_run_started_at)

    def bump_last_activity(self, rows: Sequence[ActivityRow]) -> None:
        self._write("bump_last_activity", rows)

    def mark_competitors(self, rows: Sequence[CompetitorMark]) -> None:
        self._write("mark_competitors", rows)

    # -- teams -----------------------------------------------------------------------

    def linked_teams_page(self, coach_id: UUID | None, after: UUID | None, limit: int) -> list[LinkedTeam]:
        rows = self.db.fetchall(QUERIES["linked_teams_page"], {"coach_id": coach_id, "after": after, "limit": limit})
        return [
            LinkedTeam(
                r["id"],
                r["game_platform_id"],
                tuple(TeamMember(UUID(m["competitor_id"]), m["syned_user_id"]) for m in r["members"]),
                coach_approved=r["coach_approved"],
            )
            for r in rows
        ]

    def linked_teams(self, coach_id: UUID | None, *, after: UUID | None, page_size: int) -> Iterator[LinkedTeam]:
        """Every linked team in scope after `after`, in id order."""
        return keyset(
            lambda after, limit: self.linked_teams_page(coach_id, after, limit),
            lambda team: team.id,
            after=after,
            page_size=page_size,
        )

    def linked_team_of_users(self) -> dict[str, str]:
        """Platform user -> the platform id of the linked team of ours they are on."""
        return {r["syned_user_id"]: r["team"] for r in self.db.fetchall(QUERIES["linked_team_of_users"])}

    def record_team_sync(self, teams: Sequence[TeamMark], members: Sequence[TeamMemberMark]) -> None:
        self._write("mark_teams", teams)
        self._write("mark_team_members", members)

    # -- totals sweep ----------------------------------------------------------------

    def flagged_users_page(
        self,
        coach_id: UUID | None,
        bound: datetime,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[FlaggedUser]:
        rows = self.db.fetchall(
            QUERIES["flagged_users_page"],
            {
                "coach_id": coach_id,
                "bound": bound,
                "after_since": after[0] if after else None,
                "after_user": after[1] if after else None,
                "limit": limit,
            },
        )
        return [_flagged_user(r) for r in rows]

    def linked_users_for_sweep_page(self, coach_id: UUID | None, after: str | None, limit: int) -> list[FlaggedUser]:
        rows = self.db.fetchall(
            QUERIES["linked_users_for_sweep_page"], {"coach_id": coach_id, "after": after, "limit": limit}
        )
        return [_flagged_user(r) for r in rows]

    def flagged_users(
        self,
        coach_id: UUID | None,
        bound: datetime,
        *,
        after: tuple[datetime, str] | None,
        page_size: int,
        limit: int,
    ) -> Iterator[FlaggedUser]:
        """At most `limit` flagged users after the (flag time, user) cursor, flagged by `bound`, oldest first."""
        return keyset(
            lambda after, size: self.flagged_users_page(coach_id, bound, after, size),
            _flag_key,
            after=after,
            page_size=page_size,
            limit=limit,
        )

    def linked_users_for_sweep(
        self, coach_id: UUID | None, *, after: str | None, page_size: int, limit: int
    ) -> Iterator[FlaggedUser]:
        """`forceAll`: at most `limit` linked users after `after`, flagged or not, in platform-id order."""
        return keyset(
            lambda after, size: self.linked_users_for_sweep_page(coach_id, after, size),
            lambda user: user.syned_user_id,
            after=after,
            page_size=page_size,
            limit=limit,
        )

    def write_totals(
        self,
        stats: Sequence[StatsRow],
        cleared: Sequence[ClearedFlag],
        errors: Sequence[TotalsError],
    ) -> None:
        """Write refreshed totals, clear the flags of users done with, record the errors of the others."""
        self._write("write_stats", stats)
        self._write("clear_flags", cleared)
        self._write("record_totals_errors", errors)
