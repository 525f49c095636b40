"""The domain SQL of the Game Platform jobs: the only Python that knows these tables.

Writes are batched: each method that takes rows sends them as one JSON array,
unpacked server-side with `jsonb_to_recordset`, so a batch of a hundred users
costs one round trip per table rather than one per row. Callers group a
batch's writes in one transaction together with the run's checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from lib.db import Database

# -- sync runs -------------------------------------------------------------------

# A completed run whose scope covers this one: for an unscoped run, an unscoped
# run; for a coach's run, an unscoped run or one of that coach.
HAS_COMPLETED_RUN = """
select exists (
    select 1 from game_platform_sync_runs
     where status = 'completed' and (coach_id is null or coach_id = %(coach_id)s::uuid)
) as found
"""

RUN_STARTED_BY = (
    "select id, status, coach_id, job_id, started_by_job_id, full_sync, invocations, progress, started_at"
    " from game_platform_sync_runs where started_by_job_id = %s"
)

RUN_BY_ID = (
    "select id, status, coach_id, job_id, started_by_job_id, full_sync, invocations, progress, started_at"
    " from game_platform_sync_runs where id = %s"
)

RUNNING_IN_SCOPE = """
select id, status, coach_id, job_id, started_by_job_id, full_sync, invocations, progress, started_at
  from game_platform_sync_runs
 where status = 'running' and coach_id is not distinct from %(coach_id)s::uuid
 order by started_at desc
 limit 1
"""

START_RUN = """
insert into game_platform_sync_runs (status, coach_id, job_id, started_by_job_id, full_sync, progress, started_at)
values ('running', %(coach_id)s, %(job_id)s, %(job_id)s, %(full_sync)s, %(progress)s, %(started_at)s)
returning id, status, coach_id, job_id, started_by_job_id, full_sync, invocations, progress, started_at
"""

# Every write to a run is fenced by its owning job: a job that has handed the
# run over (or was superseded) changes nothing, and its caller rolls back.
CHECKPOINT_RUN = """
update game_platform_sync_runs
   set progress = %(progress)s, counts = %(counts)s, updated_at = now()
 where id = %(run_id)s and job_id = %(job_id)s and status = 'running'
returning id
"""

HAND_OVER_RUN = """
update game_platform_sync_runs
   set job_id = %(next_job_id)s, progress = %(progress)s, counts = %(counts)s,
       invocations = invocations + 1, error = null, updated_at = now()
 where id = %(run_id)s and job_id = %(job_id)s and status = 'running'
returning id
"""

FINISH_RUN = """
update game_platform_sync_runs
   set status = %(status)s, progress = %(progress)s, counts = %(counts)s, error = %(error)s,
       finished_at = now(), updated_at = now()
 where id = %(run_id)s and job_id = %(job_id)s and status = 'running'
returning id
"""

NOTE_RUN_ERROR = """
update game_platform_sync_runs set error = %(error)s, updated_at = now()
 where id = %(run_id)s and job_id = %(job_id)s and status = 'running'
"""

ABANDON_RUN = """
update game_platform_sync_runs
   set status = 'failed', error = %(error)s, finished_at = now(), updated_at = now()
 where id = %(run_id)s and status = 'running'
"""

# -- competitors -----------------------------------------------------------------

# Linked platform users in scope, in platform-id order after a cursor. Two
# competitors may share a platform user; they are synced as one.
LINKED_USERS_PAGE = """
select c.game_platform_id as syned_user_id,
       array_agg(c.id order by c.id) as competitor_ids,
       s.last_synced_at
  from competitors c
  left join game_platform_sync_state s on s.syned_user_id = c.game_platform_id
 where c.game_platform_id is not null and c.game_platform_id <> ''
   and (%(coach_id)s::uuid is null or c.coach_id = %(coach_id)s::uuid)
   and (%(after)s::text is null or c.game_platform_id > %(after)s::text)
 group by c.game_platform_id, s.last_synced_at
 order by c.game_platform_id
 limit %(limit)s
"""

# The users most likely to have played the latest flash CTF: those with the most
# recent (then the most) recorded events. Their progress tells whether a new
# event happened that the rest of the run must fetch.
SENTINEL_USERS = """
select c.game_platform_id as syned_user_id
  from competitors c
  left join game_platform_flash_ctf_events e on e.syned_user_id = c.game_platform_id
 where c.game_platform_id is not null and c.game_platform_id <> ''
   and (%(coach_id)s::uuid is null or c.coach_id = %(coach_id)s::uuid)
 group by c.game_platform_id
 order by max(e.started_at) desc nulls last, count(e.id) desc, c.game_platform_id
 limit %(limit)s
"""

RECORDED_FLASH_EVENTS = """
select syned_user_id, event_id, challenges_solved
  from game_platform_flash_ctf_events
 where syned_user_id = any(%s::text[])
"""

COMPETITORS_WITH_TOTALS = """
select competitor_id from game_platform_stats
 where competitor_id = any(%s::uuid[]) and synced_at is not null
"""

# Solves are upserted, the last seen winning: the vendor corrects titles,
# points and categories. Every column but the key derives from the item as
# received, so an item equal to the stored `raw_payload` (same source and event)
# changes nothing and is not counted. Rows stored before `raw_payload` existed
# are refreshed once. The batch must hold each key once (see the sync's rows).
UPSERT_SOLVES = """
with incoming as (
    select * from jsonb_to_recordset(%s::jsonb) as r(
        syned_user_id text, challenge_solve_id bigint, source text, flash_ctf_event_id text,
        challenge_id bigint, challenge_title text, challenge_category text, challenge_points integer,
        challenge_retired boolean, nist_nice_work_roles text[], timestamp_unix bigint, raw_payload jsonb)
), written as (
    insert into game_platform_challenge_solves as s (
        syned_user_id, challenge_solve_id, source, flash_ctf_event_id, challenge_id, challenge_title,
        challenge_category, challenge_points, challenge_retired, nist_nice_work_roles, solved_at, raw_payload)
    select syned_user_id, challenge_solve_id, source, flash_ctf_event_id, challenge_id, challenge_title,
           challenge_category, challenge_points, challenge_retired, coalesce(nist_nice_work_roles, '{}'),
           to_timestamp(timestamp_unix), raw_payload
      from incoming
    on conflict (syned_user_id, challenge_solve_id) do update
       set source = excluded.source,
           flash_ctf_event_id = excluded.flash_ctf_event_id,
           challenge_id = excluded.challenge_id,
           challenge_title = excluded.challenge_title,
           challenge_category = excluded.challenge_category,
           challenge_points = excluded.challenge_points,
           challenge_retired = excluded.challenge_retired,
           nist_nice_work_roles = excluded.nist_nice_work_roles,
           solved_at = excluded.solved_at,
           raw_payload = excluded.raw_payload,
           updated_at = now()
     where (s.raw_payload, s.source, s.flash_ctf_event_id)
           is distinct from (excluded.raw_payload, excluded.source, excluded.flash_ctf_event_id)
    returning s.syned_user_id, (s.xmax = 0) as inserted
)
select syned_user_id, count(*) filter (where inserted)::int as new_solves,
       count(*) filter (where not inserted)::int as changed_solves
  from written group by syned_user_id
"""

COUNT_SOLVE_CHANGES = """
select r.syned_user_id, count(*) filter (where s.id is null)::int as new_solves,
       count(*) filter (where s.id is not null)::int as changed_solves
  from jsonb_to_recordset(%s::jsonb) as r(
        syned_user_id text, challenge_solve_id bigint, source text, flash_ctf_event_id text, raw_payload jsonb)
  left join game_platform_challenge_solves s
    on s.syned_user_id = r.syned_user_id and s.challenge_solve_id = r.challenge_solve_id
 where s.id is null
    or (s.raw_payload, s.source, s.flash_ctf_event_id) is distinct from (r.raw_payload, r.source, r.flash_ctf_event_id)
 group by r.syned_user_id
"""

# Events likewise: every column derives from the item as received.
UPSERT_FLASH_EVENTS = """
with incoming as (
    select * from jsonb_to_recordset(%s::jsonb) as r(
        syned_user_id text, event_id text, flash_ctf_name text, start_unix bigint, end_unix bigint,
        challenges_solved integer, points_earned integer, max_points_possible integer, rank integer,
        raw_payload jsonb)
), changed as (
    insert into game_platform_flash_ctf_events as e (
        syned_user_id, event_id, flash_ctf_name, started_at, ended_at, challenges_solved, points_earned,
        max_points_possible, rank, raw_payload)
    select syned_user_id, event_id, flash_ctf_name, to_timestamp(start_unix), to_timestamp(end_unix),
           coalesce(challenges_solved, 0), coalesce(points_earned, 0), max_points_possible, rank, raw_payload
      from incoming
    on conflict (syned_user_id, event_id) do update
       set flash_ctf_name = excluded.flash_ctf_name,
           started_at = excluded.started_at,
           ended_at = excluded.ended_at,
           challenges_solved = excluded.challenges_solved,
           points_earned = excluded.points_earned,
           max_points_possible = excluded.max_points_possible,
           rank = excluded.rank,
           raw_payload = excluded.raw_payload,
           updated_at = now()
     where e.raw_payload is distinct from excluded.raw_payload
    returning e.syned_user_id
)
select syned_user_id, count(*)::int as changed from changed group by syned_user_id
"""

COUNT_CHANGED_FLASH_EVENTS = """
select r.syned_user_id, count(*)::int as changed
  from jsonb_to_recordset(%s::jsonb) as r(syned_user_id text, event_id text, raw_payload jsonb)
  left join game_platform_flash_ctf_events e on e.syned_user_id = r.syned_user_id and e.event_id = r.event_id
 where e.id is null or e.raw_payload is distinct from r.raw_payload
 group by r.syned_user_id
"""

# A flag already raised keeps its original time (the sweep serves the oldest
# first); `totals_refresh_requested_at` moves on every new request, which is
# what the sweep's compare-and-clear checks.
RECORD_SYNC_STATE = """
insert into game_platform_sync_state as s (
    syned_user_id, last_synced_at, last_attempt_at, last_result, error_message,
    needs_totals_refresh, needs_totals_refresh_since, totals_refresh_requested_at, last_remote_accessed_at)
select r.syned_user_id,
       case when r.synced then %(run_started_at)s::timestamptz end,
       now(), r.result, r.error,
       r.flag, case when r.flag then now() end, case when r.flag then now() end,
       r.remote_accessed_at
  from jsonb_to_recordset(%(rows)s::jsonb) as r(
        syned_user_id text, synced boolean, result text, error text, flag boolean, remote_accessed_at timestamptz)
on conflict (syned_user_id) do update
   set last_synced_at = greatest(s.last_synced_at, excluded.last_synced_at),
       last_remote_accessed_at = greatest(s.last_remote_accessed_at, excluded.last_remote_accessed_at),
       last_attempt_at = excluded.last_attempt_at,
       last_result = excluded.last_result,
       error_message = excluded.error_message,
       needs_totals_refresh = s.needs_totals_refresh or excluded.needs_totals_refresh,
       needs_totals_refresh_since = case when s.needs_totals_refresh then s.needs_totals_refresh_since
                                         else excluded.needs_totals_refresh_since end,
       totals_refresh_requested_at = coalesce(excluded.totals_refresh_requested_at, s.totals_refresh_requested_at),
       updated_at = now()
"""

BUMP_LAST_ACTIVITY = """
insert into game_platform_stats as st (competitor_id, last_activity)
select c.id, r.last_activity
  from jsonb_to_recordset(%s::jsonb) as r(competitor_id uuid, last_activity timestamptz)
  join competitors c on c.id = r.competitor_id
on conflict (competitor_id) do update
   set last_activity = greatest(st.last_activity, excluded.last_activity), updated_at = now()
 where st.last_activity is null or st.last_activity < excluded.last_activity
"""

MARK_COMPETITORS = """
update competitors c
   set game_platform_synced_at = case when r.synced then now() else c.game_platform_synced_at end,
       game_platform_sync_error = r.error
  from jsonb_to_recordset(%s::jsonb) as r(competitor_id uuid, synced boolean, error text)
 where c.id = r.competitor_id
"""

# -- teams -----------------------------------------------------------------------

# `coach_approved`: the team's coach is a coach the app has approved (an unset
# `is_approved` counts as approved; `role` may be the app's enum, hence ::text).
LINKED_TEAMS_PAGE = """
select t.id, t.game_platform_id,
       exists (select 1 from profiles p
                where p.id = t.coach_id and p.role::text = 'coach' and p.is_approved is not false) as coach_approved,
       coalesce(jsonb_agg(jsonb_build_object('competitor_id', c.id, 'syned_user_id', nullif(c.game_platform_id, ''))
                          order by c.id) filter (where c.id is not null), '[]'::jsonb) as members
  from teams t
  left join team_members m on m.team_id = t.id
  left join competitors c on c.id = m.competitor_id
 where t.game_platform_id is not null and t.game_platform_id <> ''
   and (%(coach_id)s::uuid is null or t.coach_id = %(coach_id)s::uuid)
   and (%(after)s::uuid is null or t.id > %(after)s::uuid)
 group by t.id
 order by t.id
 limit %(limit)s
"""

# Which of our synced teams (linked, coach approved) each platform user is on
# locally: that team's sync assigns them. A competitor is on at most one team
# in the app; should there be more, one is picked consistently.
LINKED_TEAM_OF_USERS = """
select distinct on (c.game_platform_id) c.game_platform_id as syned_user_id, t.game_platform_id as team
  from team_members m
  join competitors c on c.id = m.competitor_id
  join teams t on t.id = m.team_id
 where c.game_platform_id is not null and c.game_platform_id <> ''
   and t.game_platform_id is not null and t.game_platform_id <> ''
   and exists (select 1 from profiles p
                where p.id = t.coach_id and p.role::text = 'coach' and p.is_approved is not false)
 order by c.game_platform_id, t.game_platform_id
"""

MARK_TEAMS = """
update teams t
   set game_platform_synced_at = case when r.synced then now() else t.game_platform_synced_at end,
       game_platform_sync_error = r.error
  from jsonb_to_recordset(%s::jsonb) as r(team_id uuid, synced boolean, error text)
 where t.id = r.team_id
"""

MARK_TEAM_MEMBERS = """
update team_members m
   set game_platform_synced_at = case when r.synced then now() else m.game_platform_synced_at end,
       game_platform_sync_error = r.error
  from jsonb_to_recordset(%s::jsonb) as r(team_id uuid, competitor_id uuid, synced boolean, error text)
 where m.team_id = r.team_id and m.competitor_id = r.competitor_id
"""

# -- totals sweep ----------------------------------------------------------------

# Flagged users, oldest flag first, after a (flag time, user) cursor, flagged no
# later than the sweep's start (so a user re-flagged mid-sweep waits for the next
# sweep instead of being visited twice). With a coach, only users one of whose
# competitors is that coach's; the competitors listed are all of the user's.
FLAGGED_USERS_PAGE = """
select s.syned_user_id, s.needs_totals_refresh_since, s.totals_refresh_requested_at,
       coalesce((select array_agg(c.id order by c.id) from competitors c
                  where c.game_platform_id = s.syned_user_id), '{}') as competitor_ids
  from game_platform_sync_state s
 where s.needs_totals_refresh
   and s.needs_totals_refresh_since <= %(bound)s
   and (%(after_since)s::timestamptz is null
        or (s.needs_totals_refresh_since, s.syned_user_id) > (%(after_since)s::timestamptz, %(after_user)s::text))
   and (%(coach_id)s::uuid is null or exists (
        select 1 from competitors c
         where c.game_platform_id = s.syned_user_id and c.coach_id = %(coach_id)s::uuid))
 order by s.needs_totals_refresh_since, s.syned_user_id
 limit %(limit)s
"""

# `forceAll`: every platform user linked to a competitor in scope, flagged or
# not, in platform-id order after a cursor; its flag, if raised, is cleared too.
LINKED_USERS_FOR_SWEEP_PAGE = """
select u.syned_user_id, s.needs_totals_refresh_since, s.totals_refresh_requested_at,
       (select array_agg(c.id order by c.id) from competitors c where c.game_platform_id = u.syned_user_id)
           as competitor_ids
  from (select distinct c.game_platform_id as syned_user_id
          from competitors c
         where c.game_platform_id is not null and c.game_platform_id <> ''
           and (%(coach_id)s::uuid is null or c.coach_id = %(coach_id)s::uuid)
           and (%(after)s::text is null or c.game_platform_id > %(after)s::text)
         order by 1
         limit %(limit)s) u
  left join game_platform_sync_state s on s.syned_user_id = u.syned_user_id
 order by u.syned_user_id
"""

WRITE_STATS = """
insert into game_platform_stats as st (
    competitor_id, challenges_completed, monthly_ctf_challenges, total_score, last_activity, synced_at)
select c.id, r.challenges_completed, r.monthly_ctf_challenges, r.total_score, r.last_activity, now()
  from jsonb_to_recordset(%s::jsonb) as r(
        competitor_id uuid, challenges_completed integer, monthly_ctf_challenges integer,
        total_score integer, last_activity timestamptz)
  join competitors c on c.id = r.competitor_id
on conflict (competitor_id) do update
   set challenges_completed = excluded.challenges_completed,
       monthly_ctf_challenges = excluded.monthly_ctf_challenges,
       total_score = excluded.total_score,
       last_activity = greatest(st.last_activity, excluded.last_activity),
       synced_at = excluded.synced_at,
       updated_at = now()
"""

# Clears a flag only if no new activity was recorded since the sweep read it.
CLEAR_FLAGS = """
update game_platform_sync_state s
   set needs_totals_refresh = false,
       needs_totals_refresh_since = null,
       totals_refreshed_at = case when r.refreshed then now() else s.totals_refreshed_at end,
       totals_error = r.error,
       updated_at = now()
  from jsonb_to_recordset(%s::jsonb) as r(syned_user_id text, requested_at timestamptz, refreshed boolean, error text)
 where s.syned_user_id = r.syned_user_id
   and s.totals_refresh_requested_at is not distinct from r.requested_at
"""

RECORD_TOTALS_ERRORS = """
update game_platform_sync_state s
   set totals_error = r.error, updated_at = now()
  from jsonb_to_recordset(%s::jsonb) as r(syned_user_id text, error text)
 where s.syned_user_id = r.syned_user_id
"""


# -- values ------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncRun:
    id: int
    status: str
    coach_id: UUID | None
    job_id: UUID | None
    started_by_job_id: UUID | None
    full_sync: bool
    invocations: int
    progress: dict[str, Any]
    started_at: datetime


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


def _rows(rows: Iterable[dict[str, Any]]) -> Jsonb:
    return Jsonb(list(rows), dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


def _run(row: dict[str, Any] | None) -> SyncRun | None:
    return SyncRun(**row) if row else None


class GamePlatformStore:
    """The domain tables as seen through the job's connection."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def now(self) -> datetime:
        """The database's clock: every stored time comes from it, so cursors compare like for like."""
        row = self.db.fetchone("select now() as now")
        assert row is not None
        now: datetime = row["now"]
        return now

    # -- sync runs -----------------------------------------------------------------

    def has_completed_run(self, coach_id: UUID | None) -> bool:
        row = self.db.fetchone(HAS_COMPLETED_RUN, {"coach_id": coach_id})
        return bool(row and row["found"])

    def run_started_by(self, job_id: UUID) -> SyncRun | None:
        return _run(self.db.fetchone(RUN_STARTED_BY, (job_id,)))

    def load_run(self, run_id: int) -> SyncRun | None:
        return _run(self.db.fetchone(RUN_BY_ID, (run_id,)))

    def running_run_in_scope(self, coach_id: UUID | None) -> SyncRun | None:
        return _run(self.db.fetchone(RUNNING_IN_SCOPE, {"coach_id": coach_id}))

    def start_run(
        self,
        *,
        job_id: UUID,
        coach_id: UUID | None,
        full_sync: bool,
        started_at: datetime,
        progress: dict[str, Any],
    ) -> SyncRun:
        row = self.db.fetchone(
            START_RUN,
            {
                "coach_id": coach_id,
                "job_id": job_id,
                "full_sync": full_sync,
                "started_at": started_at,
                "progress": Jsonb(progress),
            },
        )
        run = _run(row)
        assert run is not None
        return run

    def checkpoint_run(self, run_id: int, job_id: UUID, progress: dict[str, Any], counts: dict[str, Any]) -> bool:
        row = self.db.fetchone(
            CHECKPOINT_RUN,
            {"run_id": run_id, "job_id": job_id, "progress": Jsonb(progress), "counts": Jsonb(counts)},
        )
        return row is not None

    def hand_over_run(
        self, run_id: int, job_id: UUID, next_job_id: UUID, progress: dict[str, Any], counts: dict[str, Any]
    ) -> bool:
        row = self.db.fetchone(
            HAND_OVER_RUN,
            {
                "run_id": run_id,
                "job_id": job_id,
                "next_job_id": next_job_id,
                "progress": Jsonb(progress),
                "counts": Jsonb(counts),
            },
        )
        return row is not None

    def finish_run(
        self,
        run_id: int,
        job_id: UUID,
        *,
        status: str,
        progress: dict[str, Any],
        counts: dict[str, Any],
        error: str | None = None,
    ) -> bool:
        row = self.db.fetchone(
            FINISH_RUN,
            {
                "run_id": run_id,
                "job_id": job_id,
                "status": status,
                "progress": Jsonb(progress),
                "counts": Jsonb(counts),
                "error": error,
            },
        )
        return row is not None

    def note_run_error(self, run_id: int, job_id: UUID, error: str) -> None:
        self.db.execute(NOTE_RUN_ERROR, {"run_id": run_id, "job_id": job_id, "error": error[:20000]})

    def abandon_run(self, run_id: int, error: str) -> None:
        self.db.execute(ABANDON_RUN, {"run_id": run_id, "error": error})

    # -- competitors -----------------------------------------------------------------

    def linked_users_page(self, coach_id: UUID | None, after: str | None, limit: int) -> list[LinkedUser]:
        rows = self.db.fetchall(LINKED_USERS_PAGE, {"coach_id": coach_id, "after": after, "limit": limit})
        return [LinkedUser(r["syned_user_id"], tuple(r["competitor_ids"]), r["last_synced_at"]) for r in rows]

    def sentinel_users(self, coach_id: UUID | None, limit: int) -> list[str]:
        rows = self.db.fetchall(SENTINEL_USERS, {"coach_id": coach_id, "limit": limit})
        return [r["syned_user_id"] for r in rows]

    def recorded_flash_events(self, syned_user_ids: Sequence[str]) -> dict[tuple[str, str], int]:
        """(user, event id) → challenges solved, as recorded."""
        rows = self.db.fetchall(RECORDED_FLASH_EVENTS, (list(syned_user_ids),))
        return {(r["syned_user_id"], r["event_id"]): r["challenges_solved"] for r in rows}

    def competitors_with_totals(self, competitor_ids: Sequence[UUID]) -> set[UUID]:
        """Those of the competitors whose totals a sweep has written at least once."""
        if not competitor_ids:
            return set()
        rows = self.db.fetchall(COMPETITORS_WITH_TOTALS, (list(competitor_ids),))
        return {r["competitor_id"] for r in rows}

    def upsert_solves(self, solves: Sequence[dict[str, Any]]) -> dict[str, SolveChanges]:
        """Insert new solves, refresh changed ones; per user, how many of each."""
        if not solves:
            return {}
        rows = self.db.fetchall(UPSERT_SOLVES, (_rows(solves),))
        return {r["syned_user_id"]: SolveChanges(r["new_solves"], r["changed_solves"]) for r in rows}

    def count_solve_changes(self, solves: Sequence[dict[str, Any]]) -> dict[str, SolveChanges]:
        """What `upsert_solves` would do, without writing (dry runs)."""
        if not solves:
            return {}
        rows = self.db.fetchall(COUNT_SOLVE_CHANGES, (_rows(solves),))
        return {r["syned_user_id"]: SolveChanges(r["new_solves"], r["changed_solves"]) for r in rows}

    def upsert_flash_events(self, events: Sequence[dict[str, Any]]) -> dict[str, int]:
        """Insert or refresh events; per user, how many were new or changed."""
        if not events:
            return {}
        rows = self.db.fetchall(UPSERT_FLASH_EVENTS, (_rows(events),))
        return {r["syned_user_id"]: int(r["changed"]) for r in rows}

    def count_changed_flash_events(self, events: Sequence[dict[str, Any]]) -> dict[str, int]:
        if not events:
            return {}
        rows = self.db.fetchall(COUNT_CHANGED_FLASH_EVENTS, (_rows(events),))
        return {r["syned_user_id"]: int(r["changed"]) for r in rows}

    def record_sync_state(self, states: Sequence[dict[str, Any]], run_started_at: datetime) -> None:
        if states:
            self.db.execute(RECORD_SYNC_STATE, {"rows": _rows(states), "run_started_at": run_started_at})

    def bump_last_activity(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.db.execute(BUMP_LAST_ACTIVITY, (_rows(rows),))

    def mark_competitors(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.db.execute(MARK_COMPETITORS, (_rows(rows),))

    # -- teams -----------------------------------------------------------------------

    def linked_teams_page(self, coach_id: UUID | None, after: UUID | None, limit: int) -> list[LinkedTeam]:
        rows = self.db.fetchall(LINKED_TEAMS_PAGE, {"coach_id": coach_id, "after": after, "limit": limit})
        return [
            LinkedTeam(
                r["id"],
                r["game_platform_id"],
                tuple(TeamMember(UUID(m["competitor_id"]), m["syned_user_id"]) for m in r["members"]),
                coach_approved=r["coach_approved"],
            )
            for r in rows
        ]

    def linked_team_of_users(self) -> dict[str, str]:
        """Platform user -> the platform id of the linked team of ours they are on."""
        return {r["syned_user_id"]: r["team"] for r in self.db.fetchall(LINKED_TEAM_OF_USERS)}

    def record_team_sync(self, teams: Sequence[dict[str, Any]], members: Sequence[dict[str, Any]]) -> None:
        if teams:
            self.db.execute(MARK_TEAMS, (_rows(teams),))
        if members:
            self.db.execute(MARK_TEAM_MEMBERS, (_rows(members),))

    # -- totals sweep ----------------------------------------------------------------

    def flagged_users_page(
        self,
        coach_id: UUID | None,
        bound: datetime,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[FlaggedUser]:
        rows = self.db.fetchall(
            FLAGGED_USERS_PAGE,
            {
                "coach_id": coach_id,
                "bound": bound,
                "after_since": after[0] if after else None,
                "after_user": after[1] if after else None,
                "limit": limit,
            },
        )
        return [
            FlaggedUser(
                r["syned_user_id"],
                r["needs_totals_refresh_since"],
                r["totals_refresh_requested_at"],
                tuple(r["competitor_ids"]),
            )
            for r in rows
        ]

    def linked_users_for_sweep_page(self, coach_id: UUID | None, after: str | None, limit: int) -> list[FlaggedUser]:
        rows = self.db.fetchall(LINKED_USERS_FOR_SWEEP_PAGE, {"coach_id": coach_id, "after": after, "limit": limit})
        return [
            FlaggedUser(
                r["syned_user_id"],
                r["needs_totals_refresh_since"],
                r["totals_refresh_requested_at"],
                tuple(r["competitor_ids"] or ()),
            )
            for r in rows
        ]

    def write_totals(
        self,
        stats: Sequence[dict[str, Any]],
        cleared: Sequence[dict[str, Any]],
        errors: Sequence[dict[str, Any]],
    ) -> None:
        """Write refreshed totals, clear the flags of users done with, record the errors of the others."""
        if stats:
            self.db.execute(WRITE_STATS, (_rows(stats),))
        if cleared:
            self.db.execute(CLEAR_FLAGS, (_rows(cleared),))
        if errors:
            self.db.execute(RECORD_TOTALS_ERRORS, (_rows(errors),))
