"""`game_platform_sync`: bring competitors' solves and teams' rosters up to date with the Game Platform.

One sync run walks every platform user linked to a competitor in scope (all
coaches, or one), in platform-id order:
- ODL solves since the user was last synced (all of them the first time, or
  with `forceFullSync`); flash-CTF progress when there is news of a flash CTF
  (see `_flash_news`), on a full sync, on the user's first sync, or with
  `forceFlashCtfSync`;
- solves and flash-CTF events are upserted on their unique keys, the last seen
  winning (a vendor correction of a title or points reaches the row), with the
  item as received in `raw_payload`; `last_activity` follows the vendor's
  `last_accessed_unix_timestamp` (else the latest solve) and never moves back;
  the sync state records the outcome, and `needs_totals_refresh` is raised when
  solves or events changed or the competitor has no totals yet (the totals
  sweep then fetches them);
- a 404 on the ODL scores is recorded on the competitor and its sync state
  (`skipped_remote_missing`), a 403 as `not_approved` (the platform has not
  approved the user), a 404 on flash-CTF progress alone as no flash-CTF
  progress (the ODL results are kept); any other per-user error is recorded
  and the run goes on. If the vendor refuses (403) every user it is asked about
  and answers none, the token is wrong: the job fails (`fetching.Drain`).
Then every team linked to the platform whose coach is an approved coach gets
the members the platform does not list yet assigned, and the members it lists
but the local team no longer has removed (unless another linked team of ours
has them: assigning them there moves them).

A run may span several jobs. Each batch of writes commits together with the
run's progress (`game_platform_sync_runs.progress`), fenced by the job that owns
the run; near the time budget the job hands the run to a continuation job it
enqueues in the same transaction. So each user is written exactly once per
run, however the run is split, and a job that lost the run writes nothing.

Why per-user incremental times rather than one run-wide `after_time_unix`: a
user whose fetch failed in the last run, or who was linked since, would
otherwise miss the solves between their last good sync and that run. Each
user's time is the start of the run that last synced them, which for everyone
the last completed run covered is exactly that run's start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from lib.errors import PermanentJobError
from lib.game_platform.client import GamePlatformClient
from lib.game_platform.errors import (
    DeadlineReached,
    GamePlatformAuthError,
    GamePlatformError,
    GamePlatformUnavailable,
    NotApproved,
    RemoteMissing,
)
from lib.game_platform.fetching import Drain, DrainEnd, Outcome, fetch_in_order
from lib.game_platform.models import ChallengeSolve, FlashCTFProgressResponse, ODLScoresResponse
from lib.game_platform.store import GamePlatformStore, LinkedTeam, LinkedUser, SolveChanges, TeamMember
from lib.jobs.context import JobContext, describe
from lib.jobs.game_platform_common import MAX_ITEM_ERRORS, ItemError, VendorSession, as_job_error, vendor_session
from lib.jobs.game_platform_payloads import SYNC_TASK_TYPE, SyncRequest
from lib.jobs.registry import TaskSpec
from lib.jsonnames import CamelModel
from lib.observability import log

# Solves are asked for from a little before the user's last sync: a solve the
# vendor timestamps just before our run started but had not yet made visible
# is caught next time. Solves seen twice are deduplicated by their unique key.
INCREMENTAL_OVERLAP_SECONDS = 120
USER_PAGE_SIZE = 500
USER_WRITE_BATCH = 100
TEAM_PAGE_SIZE = 100
TEAM_WRITE_BATCH = 50
SENTINEL_USERS = 3


class CompetitorCounts(BaseModel):
    """Platform users handled, by outcome (in a dry run: what would happen)."""

    total: int = 0
    updated: int = 0  # new or changed solves found
    unchanged: int = 0
    skipped_remote_missing: int = 0
    not_approved: int = 0  # 403: the platform has not approved the user
    failed: int = 0
    flagged_for_totals: int = 0
    new_solves: int = 0
    solves_changed: int = 0  # solves already stored that the vendor now describes differently
    flash_ctf_events_changed: int = 0
    without_flash_ctf_progress: int = 0  # flash-CTF progress asked for, answered 404 (or 403)


class TeamCounts(BaseModel):
    total: int = 0
    synced: int = 0
    skipped_remote_missing: int = 0
    skipped_coach_not_approved: int = 0
    failed: int = 0
    members_assigned: int = 0
    members_already_assigned: int = 0
    members_without_platform_id: int = 0
    members_removed: int = 0  # listed by the platform, no longer on the local team
    members_failed: int = 0


class SyncProgress(CamelModel):
    """Where a run stands: kept in its run row, and carried by a continuation job's payload."""

    model_config = ConfigDict(extra="forbid", validate_by_name=True)

    run_id: int | None = None  # None in dry runs, which record no run
    started_at: datetime
    full_sync: bool
    flash_for_all: bool
    ignore_window: bool = False  # forceFullSync: every user's solves from the beginning
    phase: Literal["competitors", "teams", "done"] = "competitors"
    after_user: str | None = None  # last platform user written
    after_team: UUID | None = None  # last team written
    invocations: int = 1
    competitors: CompetitorCounts = Field(default_factory=CompetitorCounts)
    teams: TeamCounts = Field(default_factory=TeamCounts)
    errors: list[ItemError] = Field(default_factory=list, max_length=MAX_ITEM_ERRORS)
    errors_omitted: int = 0

    def add_error(self, kind: Literal["competitor", "team", "team_member"], item_id: str, error: str) -> None:
        if len(self.errors) < MAX_ITEM_ERRORS:
            self.errors.append(ItemError(kind=kind, id=item_id, error=error[:1000]))
        else:
            self.errors_omitted += 1

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def counts(self) -> dict[str, Any]:
        return {"competitors": self.competitors.model_dump(), "teams": self.teams.model_dump()}


class SyncPayload(SyncRequest):
    """The job's payload: the request, plus the progress a continuation resumes from."""

    cursor: SyncProgress | None = None


class RunSuperseded(Exception):
    """Another job owns the run now: this one must write nothing more."""


@dataclass(frozen=True)
class UserFetch:
    odl: ODLScoresResponse | None = None
    flash: FlashCTFProgressResponse | None = None
    no_flash_progress: bool = False  # asked for, and the vendor has none (404)
    missing: RemoteMissing | None = None
    refused: NotApproved | None = None
    error: GamePlatformError | None = None
    deferred: bool = False


MemberStatus = Literal["assigned", "already_assigned", "no_platform_id", "failed"]


@dataclass(frozen=True)
class MemberResult:
    member: TeamMember
    status: MemberStatus
    error: str | None = None


@dataclass(frozen=True)
class RemovedMember:
    """Someone the platform lists on the team who is not on our team any more."""

    syned_user_id: str
    status: Literal["removed", "failed"]
    error: str | None = None


@dataclass(frozen=True)
class TeamSync:
    members: tuple[MemberResult, ...] = ()
    removed: tuple[RemovedMember, ...] = ()
    missing: RemoteMissing | None = None
    coach_not_approved: bool = False
    error: GamePlatformError | None = None
    deferred: bool = False


COACH_NOT_APPROVED = (
    "skipped: the team's coach is not an approved coach (profiles.role = 'coach' and is_approved not false)"
)


def _outcome(result: UserFetch | TeamSync) -> Outcome:
    if result.deferred:
        return Outcome.DEFERRED
    if isinstance(result, UserFetch) and result.refused is not None:
        return Outcome.REFUSED
    if isinstance(result.error, GamePlatformUnavailable):
        return Outcome.UNAVAILABLE
    return Outcome.DONE


def _describe_refusal(result: UserFetch) -> str:
    return result.refused.describe() if result.refused is not None else "refused"


def _error_of(result: UserFetch | TeamSync) -> GamePlatformError | None:
    return result.error


class _SyncRun:
    """One job's share of a sync run."""

    def __init__(self, ctx: JobContext, payload: SyncPayload, store: GamePlatformStore, session: VendorSession) -> None:
        self.ctx = ctx
        self.payload = payload
        self.dry_run = payload.dry_run
        self.coach_id = payload.coach_id
        self.store = store
        self.session = session
        self.client: GamePlatformClient = session.client
        self.pool: ThreadPoolExecutor = session.pool
        self.progress: SyncProgress | None = None
        self._linked_team_of: dict[str, str] = {}  # platform user -> the linked team of ours they are on

    # -- start, finish, hand over ----------------------------------------------------

    def begin(self) -> SyncProgress:
        """Start a new run: is it a full sync, and is there flash-CTF news to fetch for everyone?"""
        started_at = self.store.now()
        forced = self.payload.force_full_sync
        full_sync = forced or not self.store.has_completed_run(self.coach_id)
        flash_for_all = full_sync or self.payload.force_flash_ctf_sync or self._flash_news()
        progress = SyncProgress(
            started_at=started_at, full_sync=full_sync, flash_for_all=flash_for_all, ignore_window=forced
        )
        if not self.dry_run:
            run = self.store.start_run(
                job_id=self.ctx.job_id,
                coach_id=self.coach_id,
                full_sync=full_sync,
                started_at=started_at,
                progress=progress.dump(),
            )
            progress.run_id = run.id
        log(
            "game_platform_sync.started",
            job_id=str(self.ctx.job_id),
            run_id=progress.run_id,
            dry_run=self.dry_run,
            coach_id=self.coach_id,
            full_sync=full_sync,
            flash_for_all=flash_for_all,
        )
        return progress

    def run(self, progress: SyncProgress) -> dict[str, Any]:
        self.progress = progress
        if progress.phase == "competitors":
            if self._sync_users() is DrainEnd.OUT_OF_TIME:
                return self._continue()
            self._advance(phase="teams")
        if self.progress.phase == "teams" and (
            not self.session.budget.can_start_call() or self._sync_teams() is DrainEnd.OUT_OF_TIME
        ):
            return self._continue()
        return self._finish()

    def _advance(self, **changes: Any) -> None:
        """Move the run on without a batch to write (an empty phase), keeping the run row in step."""
        assert self.progress is not None
        current = self.progress
        self._commit(lambda: current.model_copy(update=changes, deep=True))

    def _commit(self, write: Callable[[], SyncProgress]) -> None:
        """Run a batch's writes and checkpoint the progress they return, atomically (dry runs write nothing)."""
        if self.dry_run:
            self.progress = write()
            return
        with self.ctx.db.transaction():
            progress = write()
            assert progress.run_id is not None
            if not self.store.checkpoint_run(progress.run_id, self.ctx.job_id, progress.dump(), progress.counts()):
                raise RunSuperseded(f"sync run {progress.run_id} is no longer driven by job {self.ctx.job_id}")
        self.progress = progress

    def _continue(self) -> dict[str, Any]:
        """Out of time: enqueue a continuation job carrying the cursor, and hand it the run."""
        assert self.progress is not None
        progress = self.progress.model_copy(update={"invocations": self.progress.invocations + 1}, deep=True)
        payload = {**self.payload.to_payload(), "cursor": progress.dump()}
        with self.ctx.db.transaction():
            next_job = self.ctx.queue.enqueue(SYNC_TASK_TYPE, payload, max_attempts=self.ctx.max_attempts)
            if progress.run_id is not None and not self.store.hand_over_run(
                progress.run_id, self.ctx.job_id, next_job, progress.dump(), progress.counts()
            ):
                raise RunSuperseded(f"sync run {progress.run_id} is no longer driven by job {self.ctx.job_id}")
        log(
            "game_platform_sync.continued",
            job_id=str(self.ctx.job_id),
            run_id=progress.run_id,
            continuation_job_id=str(next_job),
            phase=progress.phase,
            after_user=progress.after_user,
        )
        return self._output("continued", self.progress, continuation=next_job)

    def _finish(self) -> dict[str, Any]:
        assert self.progress is not None
        progress = self.progress.model_copy(update={"phase": "done"}, deep=True)
        if progress.run_id is not None and not self.store.finish_run(
            progress.run_id, self.ctx.job_id, status="completed", progress=progress.dump(), counts=progress.counts()
        ):
            raise RunSuperseded(f"sync run {progress.run_id} is no longer driven by job {self.ctx.job_id}")
        self.progress = progress
        log(
            "game_platform_sync.completed",
            job_id=str(self.ctx.job_id),
            run_id=progress.run_id,
            dry_run=self.dry_run,
            **progress.counts(),
        )
        return self._output("completed", progress)

    def _output(self, status: str, progress: SyncProgress, continuation: UUID | None = None) -> dict[str, Any]:
        return run_output(status, self.payload, progress, continuation)

    # -- flash-CTF news ----------------------------------------------------------------

    def _flash_news(self) -> bool:
        """Does a sentinel user show a flash CTF (or progress in one) not yet recorded?

        Flash CTFs are platform-wide events, so the users who played the latest
        ones tell whether another has happened. Only then is every user's
        flash-CTF progress fetched, which halves the calls of an ordinary run.
        When the sentinels cannot be asked, the run fetches for everyone: a
        wasted call is cheaper than a missed event.
        """
        sentinels = self.store.sentinel_users(self.coach_id, SENTINEL_USERS)
        if not sentinels:
            return False
        recorded = self.store.recorded_flash_events(sentinels)

        def check(uid: str) -> bool:
            try:
                answer = self.client.get_flash_ctf_progress(uid)
            except GamePlatformAuthError:
                raise
            except GamePlatformError:
                return True
            if isinstance(answer, RemoteMissing | NotApproved):
                return False  # no progress to show (404), or a user the platform has not approved (403)
            return any(recorded.get((uid, item.event_id)) != item.solved for item in answer.flash_ctfs)

        return any(list(self.pool.map(check, sentinels)))

    # -- competitors ---------------------------------------------------------------------

    def _linked_users(self) -> Iterator[LinkedUser]:
        assert self.progress is not None
        after = self.progress.after_user
        while True:
            page = self.store.linked_users_page(self.coach_id, after, USER_PAGE_SIZE)
            yield from page
            if len(page) < USER_PAGE_SIZE:
                return
            after = page[-1].syned_user_id

    def _fetch_user(self, user: LinkedUser) -> UserFetch:
        """Runs on a pool thread: the vendor calls for one user, failures turned into results."""
        assert self.progress is not None
        uid = user.syned_user_id
        after = None
        if user.last_synced_at is not None and not self.progress.ignore_window:
            after = int(user.last_synced_at.timestamp()) - INCREMENTAL_OVERLAP_SECONDS
        try:
            odl = self.client.get_odl_scores(uid, after_time_unix=after)
            if isinstance(odl, RemoteMissing):
                return UserFetch(missing=odl)
            if isinstance(odl, NotApproved):
                return UserFetch(refused=odl)
            if not (self.progress.flash_for_all or user.last_synced_at is None):
                return UserFetch(odl=odl)
            answer = self.client.get_flash_ctf_progress(uid)
            # The user exists (the ODL scores say so): a 404 here means no flash-CTF
            # progress, and a 403 that the platform shows none; the ODL results stand.
            if isinstance(answer, RemoteMissing | NotApproved):
                return UserFetch(odl=odl, no_flash_progress=True)
            return UserFetch(odl=odl, flash=answer)
        except GamePlatformAuthError:
            raise
        except DeadlineReached:
            return UserFetch(deferred=True)
        except GamePlatformError as exc:
            return UserFetch(error=exc)

    def _sync_users(self) -> DrainEnd:
        results = fetch_in_order(
            self.pool,
            self._linked_users(),
            self._fetch_user,
            window=self.session.window,
            keep_going=self.session.budget.can_start_call,
        )
        assert self.progress is not None
        counts = self.progress.competitors
        drain: Drain[LinkedUser, UserFetch] = Drain(
            classify=_outcome,
            flush=self._write_users,
            batch_size=USER_WRITE_BATCH,
            outage_threshold=self.session.outage_threshold,
            error_of=_error_of,
            answered=counts.total > counts.not_approved,
            describe_refusal=_describe_refusal,
        )
        return drain.run(results)

    def _write_users(self, batch: list[tuple[LinkedUser, UserFetch]]) -> None:
        solves, events = _solve_and_event_rows(batch)
        competitor_ids = [cid for user, fetched in batch if fetched.odl is not None for cid in user.competitor_ids]

        def write() -> SyncProgress:
            with_totals = self.store.competitors_with_totals(competitor_ids)
            if self.dry_run:
                solve_changes = self.store.count_solve_changes(solves)
                event_changes = self.store.count_changed_flash_events(events)
                return self._tally_users(batch, solve_changes, event_changes, with_totals)[0]
            solve_changes = self.store.upsert_solves(solves)
            event_changes = self.store.upsert_flash_events(events)
            progress, rows = self._tally_users(batch, solve_changes, event_changes, with_totals)
            self.store.record_sync_state(rows["states"], progress.started_at)
            self.store.bump_last_activity(rows["activity"])
            self.store.mark_competitors(rows["competitors"])
            return progress

        self._commit(write)

    def _tally_users(
        self,
        batch: list[tuple[LinkedUser, UserFetch]],
        solve_changes: dict[str, SolveChanges],
        event_changes: dict[str, int],
        with_totals: set[UUID],
    ) -> tuple[SyncProgress, dict[str, list[dict[str, Any]]]]:
        """The batch's counts, errors and rows to write; the run's progress moves past the batch."""
        assert self.progress is not None
        progress = self.progress.model_copy(deep=True)
        counts = progress.competitors
        rows: dict[str, list[dict[str, Any]]] = {"states": [], "competitors": [], "activity": []}
        for user, fetched in batch:
            uid = user.syned_user_id
            counts.total += 1
            if fetched.odl is not None:
                changes = solve_changes.get(uid, SolveChanges(0, 0))
                events_changed = event_changes.get(uid, 0)
                found = changes.new + changes.changed
                flag = found > 0 or events_changed > 0 or any(cid not in with_totals for cid in user.competitor_ids)
                if found:
                    counts.updated += 1
                else:
                    counts.unchanged += 1
                counts.new_solves += changes.new
                counts.solves_changed += changes.changed
                counts.flash_ctf_events_changed += events_changed
                counts.without_flash_ctf_progress += fetched.no_flash_progress
                counts.flagged_for_totals += flag
                result, error = ("updated" if found else "unchanged"), None
                accessed = _unix_time(fetched.odl.last_accessed_unix_timestamp)
                rows["states"].append(
                    {
                        "syned_user_id": uid,
                        "synced": True,
                        "result": result,
                        "error": None,
                        "flag": flag,
                        "remote_accessed_at": accessed,
                    }
                )
                activity = accessed or _latest_solve(fetched)
                if activity is not None:
                    rows["activity"] += [
                        {"competitor_id": cid, "last_activity": activity} for cid in user.competitor_ids
                    ]
            else:
                if fetched.missing is not None:
                    counts.skipped_remote_missing += 1
                    result, error = "remote_missing", fetched.missing.describe()
                elif fetched.refused is not None:
                    counts.not_approved += 1
                    result, error = "not_approved", fetched.refused.describe()
                else:
                    counts.failed += 1
                    result, error = "failed", str(fetched.error)
                progress.add_error("competitor", uid, error)
                rows["states"].append(
                    {"syned_user_id": uid, "synced": False, "result": result, "error": error, "flag": False}
                )
            rows["competitors"] += [
                {"competitor_id": cid, "synced": fetched.odl is not None, "error": error} for cid in user.competitor_ids
            ]
        progress.after_user = batch[-1][0].syned_user_id
        return progress, rows

    # -- teams ---------------------------------------------------------------------------

    def _linked_teams(self) -> Iterator[LinkedTeam]:
        assert self.progress is not None
        after = self.progress.after_team
        while True:
            page = self.store.linked_teams_page(self.coach_id, after, TEAM_PAGE_SIZE)
            yield from page
            if len(page) < TEAM_PAGE_SIZE:
                return
            after = page[-1].id

    def _sync_team(self, team: LinkedTeam) -> TeamSync:
        """Runs on a pool thread: assign the members the platform does not list yet, remove those we no longer have.

        A listed user who is on another of our linked teams is left for that
        team's sync: assigning them there moves them (a user has one team), while
        deleting their assignment here could undo that assignment if it came first.
        """
        if not team.coach_approved:
            return TeamSync(coach_not_approved=True)
        try:
            listed = self.client.get_team_assignments(team.game_platform_id)
            if isinstance(listed, RemoteMissing):
                return TeamSync(missing=listed)
            on_team = {a.syned_user_id for a in listed.assignments if a.syned_team_id in (None, team.game_platform_id)}
            results: list[MemberResult] = []
            for member in team.members:
                if not member.syned_user_id:
                    results.append(MemberResult(member, "no_platform_id", "competitor has no Game Platform id"))
                elif member.syned_user_id in on_team:
                    results.append(MemberResult(member, "already_assigned"))
                elif self.dry_run:
                    results.append(MemberResult(member, "assigned"))
                else:
                    results.append(self._assign(team, member))
            ours = {m.syned_user_id for m in team.members if m.syned_user_id}
            stale = sorted(uid for uid in on_team - ours if not self._moves_to_another_team(uid, team))
            removed = tuple(RemovedMember(uid, "removed") if self.dry_run else self._remove(uid) for uid in stale)
            return TeamSync(members=tuple(results), removed=removed)
        except GamePlatformAuthError:
            raise
        except DeadlineReached:
            return TeamSync(deferred=True)
        except GamePlatformError as exc:
            return TeamSync(error=exc)

    def _moves_to_another_team(self, syned_user_id: str, team: LinkedTeam) -> bool:
        """Is the user on another of our synced teams locally (so that team's sync assigns them there)?"""
        home = self._linked_team_of.get(syned_user_id)
        return home is not None and home != team.game_platform_id

    def _remove(self, syned_user_id: str) -> RemovedMember:
        try:
            self.client.delete_assignment(syned_user_id)  # a 404: already off the team, which is the aim
        except (GamePlatformAuthError, DeadlineReached):
            raise
        except GamePlatformError as exc:
            return RemovedMember(syned_user_id, "failed", str(exc))
        return RemovedMember(syned_user_id, "removed")

    def _assign(self, team: LinkedTeam, member: TeamMember) -> MemberResult:
        assert member.syned_user_id is not None
        try:
            answer = self.client.assign_team(team.game_platform_id, member.syned_user_id)
        except (GamePlatformAuthError, DeadlineReached):
            raise
        except GamePlatformError as exc:
            return MemberResult(member, "failed", str(exc))
        if isinstance(answer, RemoteMissing):
            return MemberResult(member, "failed", answer.describe())
        return MemberResult(member, "assigned")

    def _sync_teams(self) -> DrainEnd:
        self._linked_team_of = self.store.linked_team_of_users()
        results = fetch_in_order(
            self.pool,
            self._linked_teams(),
            self._sync_team,
            window=self.session.window,
            keep_going=self.session.budget.can_start_call,
        )
        drain: Drain[LinkedTeam, TeamSync] = Drain(
            classify=_outcome,
            flush=self._write_teams,
            batch_size=TEAM_WRITE_BATCH,
            outage_threshold=self.session.outage_threshold,
            error_of=_error_of,
        )
        return drain.run(results)

    def _write_teams(self, batch: list[tuple[LinkedTeam, TeamSync]]) -> None:
        assert self.progress is not None
        progress = self.progress.model_copy(deep=True)
        counts = progress.teams
        team_rows: list[dict[str, Any]] = []
        member_rows: list[dict[str, Any]] = []
        for team, result in batch:
            counts.total += 1
            if result.coach_not_approved:
                counts.skipped_coach_not_approved += 1
                progress.add_error("team", team.game_platform_id, COACH_NOT_APPROVED)
                team_rows.append({"team_id": team.id, "synced": False, "error": COACH_NOT_APPROVED})
                continue
            if result.missing is not None or result.error is not None:
                error = result.missing.describe() if result.missing is not None else str(result.error)
                if result.missing is not None:
                    counts.skipped_remote_missing += 1
                else:
                    counts.failed += 1
                progress.add_error("team", team.game_platform_id, error)
                team_rows.append({"team_id": team.id, "synced": False, "error": error})
                continue
            failures = 0
            for member in result.members:
                if member.status == "assigned":
                    counts.members_assigned += 1
                elif member.status == "already_assigned":
                    counts.members_already_assigned += 1
                elif member.status == "no_platform_id":
                    counts.members_without_platform_id += 1
                else:
                    counts.members_failed += 1
                    failures += 1
                    progress.add_error(
                        "team_member", f"{team.game_platform_id}/{member.member.syned_user_id}", member.error or ""
                    )
                member_rows.append(
                    {
                        "team_id": team.id,
                        "competitor_id": member.member.competitor_id,
                        "synced": member.status in ("assigned", "already_assigned"),
                        "error": member.error,
                    }
                )
            for gone in result.removed:
                if gone.status == "removed":
                    counts.members_removed += 1
                else:
                    counts.members_failed += 1
                    failures += 1
                    progress.add_error("team_member", f"{team.game_platform_id}/{gone.syned_user_id}", gone.error or "")
            if failures:
                counts.failed += 1
                team_rows.append(
                    {
                        "team_id": team.id,
                        "synced": False,
                        "error": f"{failures} member(s) could not be assigned or removed",
                    }
                )
            else:
                counts.synced += 1
                team_rows.append({"team_id": team.id, "synced": True, "error": None})
        progress.after_team = batch[-1][0].id

        def write() -> SyncProgress:
            if not self.dry_run:
                self.store.record_team_sync(team_rows, member_rows)
            return progress

        self._commit(write)


def _unix_time(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def _latest_solve(fetched: UserFetch) -> datetime | None:
    """When the user last solved something, among the solves in this answer."""
    solves = list(fetched.odl.challenge_solves) if fetched.odl is not None else []
    for item in fetched.flash.flash_ctfs if fetched.flash is not None else []:
        solves += item.challenge_solves
    stamps = [s.timestamp_unix for s in solves if s.timestamp_unix is not None]
    return _unix_time(max(stamps)) if stamps else None


def _solve_and_event_rows(
    batch: list[tuple[LinkedUser, UserFetch]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows for the solves and flash-CTF events in a batch, one per key, the last seen winning.

    The vendor has been seen to list a solve twice in one answer (and a flash-CTF
    solve may also appear among the ODL ones); one statement may not upsert a
    row twice, and the later item is the vendor's latest word.
    """
    solves: dict[tuple[str, int], dict[str, Any]] = {}
    events: dict[tuple[str, str], dict[str, Any]] = {}
    for user, fetched in batch:
        if fetched.odl is None:
            continue
        uid = user.syned_user_id
        sources: list[tuple[str, str | None, ChallengeSolve]] = [("odl", None, s) for s in fetched.odl.challenge_solves]
        for item in fetched.flash.flash_ctfs if fetched.flash is not None else []:
            events[(uid, item.event_id)] = {
                "syned_user_id": uid,
                "event_id": item.event_id,
                "flash_ctf_name": item.flash_ctf_name,
                "start_unix": item.flash_ctf_time_start_unix,
                "end_unix": item.flash_ctf_time_end_unix,
                "challenges_solved": item.solved,
                "points_earned": item.points_earned,
                "max_points_possible": item.max_points_possible,
                "rank": item.rank,
                "raw_payload": item.raw_payload,
            }
            sources += [("flash_ctf", item.event_id, s) for s in item.challenge_solves]
        for source, event_id, solve in sources:
            key = (uid, solve.challenge_solve_id)
            solves.pop(key, None)  # the last seen goes last, as if it had been the only one
            solves[key] = {
                "syned_user_id": uid,
                "challenge_solve_id": solve.challenge_solve_id,
                "source": source,
                "flash_ctf_event_id": event_id,
                "challenge_id": solve.challenge_id,
                "challenge_title": solve.challenge_title,
                "challenge_category": solve.challenge_category,
                "challenge_points": solve.challenge_points,
                "challenge_retired": solve.challenge_retired,
                "nist_nice_work_roles": solve.nist_nice_work_roles,
                "timestamp_unix": solve.timestamp_unix,
                "raw_payload": solve.raw_payload,
            }
    return list(solves.values()), list(events.values())


def run_output(
    status: str, payload: SyncRequest, progress: SyncProgress | None, continuation: UUID | None = None
) -> dict[str, Any]:
    """The job's output: the whole run's counts so far (a continuation's output covers the run to date)."""
    coach = str(payload.coach_id) if payload.coach_id is not None else None
    body: dict[str, Any] = {
        "status": status,
        "dryRun": payload.dry_run,
        "coachId": coach,
        "forceFullSync": payload.force_full_sync,
        "forceFlashCtfSync": payload.force_flash_ctf_sync,
    }
    if progress is not None:
        body.update(
            {
                "runId": progress.run_id,
                "startedAt": progress.started_at.isoformat(),
                "fullSync": progress.full_sync,
                "flashCtfProgress": "all users" if progress.flash_for_all else "first-time users only",
                "incrementalWindow": (
                    "ignored (forceFullSync)" if progress.ignore_window else "since each user's last sync"
                ),
                "invocations": progress.invocations,
                **progress.counts(),
                "errors": [e.model_dump() for e in progress.errors],
                "errorsOmitted": progress.errors_omitted,
            }
        )
    if continuation is not None:
        body["continuationJobId"] = str(continuation)
    return body


def _resume_or_skip(
    ctx: JobContext, store: GamePlatformStore, payload: SyncPayload
) -> tuple[SyncProgress | None, dict[str, Any] | None]:
    """Which run this job drives: (its progress, None), (None, None) for a new run, or (None, output) to stop."""
    if payload.cursor is not None and payload.cursor.run_id is not None:
        run = store.load_run(payload.cursor.run_id)
        if run is None:
            raise PermanentJobError(f"sync run {payload.cursor.run_id} named by this continuation no longer exists")
        if run.status != "running" or run.job_id != ctx.job_id:
            return None, _superseded(payload, run.id, run.status, run.job_id)
        return SyncProgress.model_validate(run.progress), None
    own = store.run_started_by(ctx.job_id)
    if own is not None:
        if own.status == "running" and own.job_id == ctx.job_id:
            return SyncProgress.model_validate(own.progress), None  # this job's retry
        return None, _superseded(payload, own.id, own.status, own.job_id)
    other = store.running_run_in_scope(payload.coach_id)
    if other is not None:
        owner_status = ctx.queue.status_of(other.job_id) if other.job_id is not None else None
        if owner_status in ("pending", "processing"):
            return None, {
                **run_output("skipped", payload, None),
                "runId": other.id,
                "reason": f"sync run {other.id} for the same scope is in progress "
                f"(job {other.job_id} is {owner_status})",
            }
        store.abandon_run(other.id, f"abandoned: the job driving it ({other.job_id}) is {owner_status or 'gone'}")
    return None, None


def _superseded(payload: SyncRequest, run_id: int, status: str, job_id: UUID | None) -> dict[str, Any]:
    return {
        **run_output("superseded", payload, None),
        "runId": run_id,
        "reason": f"sync run {run_id} is {status} and driven by job {job_id}, not this one",
    }


def handle(ctx: JobContext, payload: SyncPayload) -> dict[str, Any]:
    store = GamePlatformStore(ctx.db)
    if payload.dry_run:
        progress, early = payload.cursor, None
    else:
        progress, early = _resume_or_skip(ctx, store, payload)
    if early is not None:
        log("game_platform_sync.not_run", "warning", job_id=str(ctx.job_id), **early)
        return early
    sync: _SyncRun | None = None
    try:
        with vendor_session(ctx) as session:
            sync = _SyncRun(ctx, payload, store, session)
            return sync.run(progress if progress is not None else sync.begin())
    except RunSuperseded as exc:
        log("game_platform_sync.superseded", "warning", job_id=str(ctx.job_id), reason=str(exc))
        return {**run_output("superseded", payload, sync.progress if sync else None), "reason": str(exc)}
    except Exception as exc:
        if sync is not None and sync.progress is not None and sync.progress.run_id is not None:
            _record_failure(ctx, store, sync.progress, exc)
        job_error = as_job_error(exc)
        if job_error is exc:
            raise
        raise job_error from exc


def _record_failure(ctx: JobContext, store: GamePlatformStore, progress: SyncProgress, exc: Exception) -> None:
    """Note why the run stopped; on the job's last attempt the run fails with it."""
    assert progress.run_id is not None
    error = describe(exc)
    with suppress(Exception):  # the database may be what failed; the job's own error says why
        if ctx.is_last_attempt:
            store.finish_run(
                progress.run_id,
                ctx.job_id,
                status="failed",
                progress=progress.dump(),
                counts=progress.counts(),
                error=error,
            )
        else:
            store.note_run_error(progress.run_id, ctx.job_id, error)


TASK = TaskSpec(SYNC_TASK_TYPE, SyncPayload, handle)
