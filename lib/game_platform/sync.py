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
  (`skippedRemoteMissing`), a 403 as `not_approved` (the platform has not
  approved the user), a 404 on flash-CTF progress alone as no flash-CTF
  progress (the ODL results are kept); any other per-user error is recorded
  and the sync run goes on. If the vendor refuses (403) every user it is asked about
  and answers none, the token is wrong: the job fails (`fetching.Drain`).
Then every team linked to the platform whose coach is an approved coach gets
the members the platform does not list yet assigned, and the members it lists
but the local team no longer has removed (unless another linked team of ours
has them: assigning them there moves them).

A sync run may span several jobs. Each batch of writes commits together with
the sync run's progress (`game_platform_sync_runs.progress`), fenced by the job
that owns it (`game_platform_sync_run_checkpoint`); near the time budget the
job hands the sync run to a continuation job it enqueues in the same
transaction (`game_platform_sync_run_hand_over`). So each user is written
exactly once per sync run, however it is split, and a job that lost the sync
run writes nothing.

Why per-user incremental times rather than one `after_time_unix` per sync run:
a user whose fetch failed in the last sync run, or who was linked since, would
otherwise miss the solves between their last good sync and that one. Each
user's time is the start of the sync run that last synced them, which for
everyone the last completed sync run covered is exactly its start.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from lib.errors import PermanentJobError
from lib.game_platform.errors import (
    DeadlineReached,
    GamePlatformAuthError,
    GamePlatformError,
    NotApproved,
    RemoteMissing,
)
from lib.game_platform.fetching import DrainEnd, Fetched
from lib.game_platform.models import ChallengeSolve
from lib.game_platform.output import MAX_ITEM_ERRORS, ItemCounts, ItemError, OutputModel
from lib.game_platform.payloads import SYNC_TASK_TYPE, SyncRequest
from lib.game_platform.session import ScoresFetch, VendorSession, job_errors, vendor_session
from lib.game_platform.store import (
    ActivityRow,
    CompetitorMark,
    FlashEventRow,
    GamePlatformStore,
    LinkedTeam,
    LinkedUser,
    SolveChanges,
    SolveRow,
    SyncStateRow,
    TeamMark,
    TeamMember,
    TeamMemberMark,
)
from lib.jobs.context import JobContext, describe
from lib.jobs.registry import TaskSpec
from lib.observability import log

# Solves are asked for from a little before the user's last sync: a solve the
# vendor timestamps just before our sync run started but had not yet made visible
# is caught next time. Solves seen twice are deduplicated by their unique key.
INCREMENTAL_OVERLAP_SECONDS = 120
USER_PAGE_SIZE = 500
USER_WRITE_BATCH = 100
TEAM_PAGE_SIZE = 100
TEAM_WRITE_BATCH = 50
SENTINEL_USERS = 3

SyncStatus = Literal["completed", "continued", "skipped", "superseded"]


class CompetitorCounts(ItemCounts):
    """Platform users handled, by outcome (in a dry run: what would happen)."""

    updated: int = 0  # new or changed solves found
    unchanged: int = 0
    not_approved: int = 0  # 403: the platform has not approved the user
    flagged_for_totals: int = 0
    new_solves: int = 0
    solves_changed: int = 0  # solves already stored that the vendor now describes differently
    flash_ctf_events_changed: int = 0
    without_flash_ctf_progress: int = 0  # flash-CTF progress asked for, answered 404 (or 403)


class TeamCounts(ItemCounts):
    """Linked teams handled, and their members, by outcome."""

    synced: int = 0
    skipped_coach_not_approved: int = 0
    members_assigned: int = 0
    members_already_assigned: int = 0
    members_without_platform_id: int = 0
    members_removed: int = 0  # listed by the platform, no longer on the local team
    members_failed: int = 0


class SyncCounts(OutputModel):
    """A sync run's counts: in its row (`counts`) and in its jobs' outputs."""

    competitors: CompetitorCounts = Field(default_factory=CompetitorCounts)
    teams: TeamCounts = Field(default_factory=TeamCounts)


class SyncProgress(SyncCounts):
    """Where a sync run stands: kept in its row, and carried by a continuation job's payload."""

    sync_run_id: int | None = None  # None in dry runs, which record no sync run
    started_at: datetime
    full_sync: bool
    flash_for_all: bool
    ignore_window: bool = False  # forceFullSync: every user's solves from the beginning
    phase: Literal["competitors", "teams", "done"] = "competitors"
    after_user: str | None = None  # last platform user written
    after_team: UUID | None = None  # last team written
    invocations: int = 1
    errors: list[ItemError] = Field(default_factory=list, max_length=MAX_ITEM_ERRORS)
    errors_omitted: int = 0

    def add_error(self, kind: Literal["competitor", "team", "team_member"], item_id: str, error: str) -> None:
        if len(self.errors) < MAX_ITEM_ERRORS:
            self.errors.append(ItemError(kind=kind, id=item_id, error=error[:1000]))
        else:
            self.errors_omitted += 1

    def counts(self) -> dict[str, Any]:
        return SyncCounts(competitors=self.competitors, teams=self.teams).dump()

    def report(self) -> SyncReport:
        return SyncReport(
            sync_run_id=self.sync_run_id,
            started_at=self.started_at,
            full_sync=self.full_sync,
            flash_ctf_progress="all users" if self.flash_for_all else "first-time users only",
            incremental_window="ignored (forceFullSync)" if self.ignore_window else "since each user's last sync",
            invocations=self.invocations,
            competitors=self.competitors,
            teams=self.teams,
            errors=self.errors,
            errors_omitted=self.errors_omitted,
        )


class SyncReport(SyncCounts):
    """A job's account of its sync run: the whole sync run to date (a continuation's covers the jobs before it)."""

    sync_run_id: int | None
    started_at: datetime
    full_sync: bool
    flash_ctf_progress: Literal["all users", "first-time users only"]
    incremental_window: str
    invocations: int
    errors: list[ItemError]
    errors_omitted: int


class SyncOutcome(OutputModel):
    """How the job ended; a job that drove no sync run names the one it found (`syncRunId`) and why."""

    status: SyncStatus
    sync_run_id: int | None = None
    reason: str | None = None
    continuation_job_id: UUID | None = None


def sync_output(outcome: SyncOutcome, payload: SyncRequest, progress: SyncProgress | None) -> dict[str, Any]:
    """The job's output: how it ended, what was asked, and the sync run's report when it drove one."""
    body = {**outcome.dump(omit_none=("sync_run_id", "reason", "continuation_job_id")), **payload.to_payload()}
    if progress is not None:
        body.update(progress.report().dump())
    return body


class SyncPayload(SyncRequest):
    """The job's payload: the request, plus the progress a continuation resumes from."""

    cursor: SyncProgress | None = None


class SyncRunSuperseded(Exception):
    """Another job owns the sync run now: this one must write nothing more."""


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


@dataclass(frozen=True, kw_only=True)
class TeamSync(Fetched):
    """A team's roster synced (or why not): its members assigned, those gone removed."""

    members: tuple[MemberResult, ...] = ()
    removed: tuple[RemovedMember, ...] = ()
    missing: RemoteMissing | None = None
    coach_not_approved: bool = False


COACH_NOT_APPROVED = (
    "skipped: the team's coach is not an approved coach (profiles.role = 'coach' and is_approved not false)"
)


class _SyncJob:
    """One job's share of a sync run."""

    def __init__(self, ctx: JobContext, payload: SyncPayload, store: GamePlatformStore, session: VendorSession) -> None:
        self.ctx = ctx
        self.payload = payload
        self.dry_run = payload.dry_run
        self.coach_id = payload.coach_id
        self.store = store
        self.session = session
        self.progress: SyncProgress | None = None
        self._linked_team_of: dict[str, str] = {}  # platform user -> the linked team of ours they are on

    # -- start, finish, hand over ----------------------------------------------------

    def begin(self) -> SyncProgress:
        """Start a new sync run: is it a full sync, and is there flash-CTF news to fetch for everyone?"""
        started_at = self.store.now()
        forced = self.payload.force_full_sync
        full_sync = forced or not self.store.has_completed_sync_run(self.coach_id)
        flash_for_all = full_sync or self.payload.force_flash_ctf_sync or self._flash_news()
        progress = SyncProgress(
            started_at=started_at, full_sync=full_sync, flash_for_all=flash_for_all, ignore_window=forced
        )
        if not self.dry_run:
            progress.sync_run_id = self.store.start_sync_run(
                job_id=self.ctx.job_id,
                coach_id=self.coach_id,
                full_sync=full_sync,
                started_at=started_at,
                progress=progress.dump(),
            )
        log(
            "game_platform_sync.started",
            job_id=str(self.ctx.job_id),
            sync_run_id=progress.sync_run_id,
            dry_run=self.dry_run,
            coach_id=self.coach_id,
            full_sync=full_sync,
            flash_for_all=flash_for_all,
        )
        return progress

    def drive(self, progress: SyncProgress) -> dict[str, Any]:
        """Take the sync run from `progress` as far as the budget allows: to its end, or to a continuation."""
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
        """Move the sync run on without a batch to write (an empty phase), keeping its row in step."""
        assert self.progress is not None
        current = self.progress
        self._commit(lambda: current.model_copy(update=changes, deep=True))

    def _superseded(self, progress: SyncProgress) -> SyncRunSuperseded:
        return SyncRunSuperseded(f"sync run {progress.sync_run_id} is no longer driven by job {self.ctx.job_id}")

    def _commit(self, write: Callable[[], SyncProgress]) -> None:
        """Run a batch's writes and checkpoint the progress they return, atomically (dry runs write nothing)."""
        if self.dry_run:
            self.progress = write()
            return
        with self.ctx.db.transaction():
            progress = write()
            assert progress.sync_run_id is not None
            if not self.store.checkpoint_sync_run(
                progress.sync_run_id, self.ctx.job_id, progress.dump(), progress.counts()
            ):
                raise self._superseded(progress)
        self.progress = progress

    def _continue(self) -> dict[str, Any]:
        """Out of time: enqueue a continuation job carrying the cursor, and hand it the sync run."""
        assert self.progress is not None
        progress = self.progress.model_copy(update={"invocations": self.progress.invocations + 1}, deep=True)
        payload = {**self.payload.to_payload(), "cursor": progress.dump()}
        with self.ctx.db.transaction():
            next_job = self.ctx.queue.enqueue(SYNC_TASK_TYPE, payload, max_attempts=self.ctx.max_attempts)
            if progress.sync_run_id is not None and not self.store.hand_over_sync_run(
                progress.sync_run_id, self.ctx.job_id, next_job, progress.dump(), progress.counts()
            ):
                raise self._superseded(progress)
        log(
            "game_platform_sync.continued",
            job_id=str(self.ctx.job_id),
            sync_run_id=progress.sync_run_id,
            continuation_job_id=str(next_job),
            phase=progress.phase,
            after_user=progress.after_user,
        )
        return sync_output(SyncOutcome(status="continued", continuation_job_id=next_job), self.payload, self.progress)

    def _finish(self) -> dict[str, Any]:
        assert self.progress is not None
        progress = self.progress.model_copy(update={"phase": "done"}, deep=True)
        if progress.sync_run_id is not None and not self.store.finish_sync_run(
            progress.sync_run_id,
            self.ctx.job_id,
            status="completed",
            progress=progress.dump(),
            counts=progress.counts(),
        ):
            raise self._superseded(progress)
        self.progress = progress
        log(
            "game_platform_sync.completed",
            job_id=str(self.ctx.job_id),
            sync_run_id=progress.sync_run_id,
            dry_run=self.dry_run,
            competitors=progress.competitors.model_dump(by_alias=False),
            teams=progress.teams.model_dump(by_alias=False),
        )
        return sync_output(SyncOutcome(status="completed"), self.payload, progress)

    # -- flash-CTF news ----------------------------------------------------------------

    def _flash_news(self) -> bool:
        """Does a sentinel user show a flash CTF (or progress in one) not yet recorded?

        Flash CTFs are platform-wide events, so the users who played the latest
        ones tell whether another has happened. Only then is every user's
        flash-CTF progress fetched, which halves the calls of an ordinary sync
        run. When the sentinels cannot be asked, the sync run fetches for
        everyone: a wasted call is cheaper than a missed event.
        """
        sentinels = self.store.sentinel_users(self.coach_id, SENTINEL_USERS)
        if not sentinels:
            return False
        recorded = self.store.recorded_flash_events(sentinels)

        def check(uid: str) -> bool:
            try:
                answer = self.session.client.get_flash_ctf_progress(uid)
            except GamePlatformAuthError:
                raise
            except GamePlatformError:
                return True
            if isinstance(answer, RemoteMissing | NotApproved):
                return False  # no progress to show (404), or a user the platform has not approved (403)
            return any(recorded.get((uid, item.event_id)) != item.solved for item in answer.flash_ctfs)

        return any(list(self.session.pool.map(check, sentinels)))

    # -- competitors ---------------------------------------------------------------------

    def _fetch_user(self, user: LinkedUser) -> ScoresFetch:
        """Runs on a pool thread: the vendor calls for one user."""
        assert self.progress is not None
        after = None
        if user.last_synced_at is not None and not self.progress.ignore_window:
            after = int(user.last_synced_at.timestamp()) - INCREMENTAL_OVERLAP_SECONDS
        flash = self.progress.flash_for_all or user.last_synced_at is None
        return self.session.fetch_scores(user.syned_user_id, after_time_unix=after, flash=flash)

    def _sync_users(self) -> DrainEnd:
        assert self.progress is not None
        counts = self.progress.competitors
        return self.session.walk(
            self.store.linked_users(self.coach_id, after=self.progress.after_user, page_size=USER_PAGE_SIZE),
            self._fetch_user,
            self._write_users,
            result=ScoresFetch,
            batch_size=USER_WRITE_BATCH,
            answered=counts.total > counts.not_approved,
        )

    def _write_users(self, batch: list[tuple[LinkedUser, ScoresFetch]]) -> None:
        solves, events = _solve_and_event_rows(batch)
        competitor_ids = [cid for user, fetched in batch if fetched.odl is not None for cid in user.competitor_ids]

        def write() -> SyncProgress:
            with_totals = self.store.competitors_with_totals(competitor_ids)
            if self.dry_run:
                solve_changes = self.store.count_solve_changes(solves)
                event_changes = self.store.count_changed_flash_events(events)
                return self._tally_users(batch, solve_changes, event_changes, with_totals).progress
            solve_changes = self.store.upsert_solves(solves)
            event_changes = self.store.upsert_flash_events(events)
            tally = self._tally_users(batch, solve_changes, event_changes, with_totals)
            self.store.record_sync_state(tally.states, tally.progress.started_at)
            self.store.bump_last_activity(tally.activity)
            self.store.mark_competitors(tally.competitors)
            return tally.progress

        self._commit(write)

    def _tally_users(
        self,
        batch: list[tuple[LinkedUser, ScoresFetch]],
        solve_changes: dict[str, SolveChanges],
        event_changes: dict[str, int],
        with_totals: set[UUID],
    ) -> _UserTally:
        """The batch's counts, errors and rows to write; the sync run's progress moves past the batch."""
        assert self.progress is not None
        tally = _UserTally(self.progress.model_copy(deep=True))
        counts = tally.progress.competitors
        for user, fetched in batch:
            uid = user.syned_user_id
            counts.total += 1
            error: str | None = None
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
                tally.states.append(
                    SyncStateRow(
                        syned_user_id=uid,
                        synced=True,
                        result="updated" if found else "unchanged",
                        error=None,
                        flag=flag,
                        remote_accessed_at=fetched.last_accessed,
                    )
                )
                activity = fetched.last_activity
                if activity is not None:
                    tally.activity += [ActivityRow(cid, activity) for cid in user.competitor_ids]
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
                tally.progress.add_error("competitor", uid, error)
                tally.states.append(
                    SyncStateRow(syned_user_id=uid, synced=False, result=result, error=error, flag=False)
                )
            tally.competitors += [CompetitorMark(cid, fetched.odl is not None, error) for cid in user.competitor_ids]
        tally.progress.after_user = batch[-1][0].syned_user_id
        return tally

    # -- teams ---------------------------------------------------------------------------

    def _sync_team(self, team: LinkedTeam) -> TeamSync:
        """Runs on a pool thread: assign the members the platform does not list yet, remove those we no longer have.

        A listed user who is on another of our linked teams is left for that
        team's sync: assigning them there moves them (a user has one team), while
        deleting their assignment here could undo that assignment if it came first.
        """
        if not team.coach_approved:
            return TeamSync(coach_not_approved=True)
        listed = self.session.client.get_team_assignments(team.game_platform_id)
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

    def _moves_to_another_team(self, syned_user_id: str, team: LinkedTeam) -> bool:
        """Is the user on another of our synced teams locally (so that team's sync assigns them there)?"""
        home = self._linked_team_of.get(syned_user_id)
        return home is not None and home != team.game_platform_id

    def _remove(self, syned_user_id: str) -> RemovedMember:
        try:
            self.session.client.delete_assignment(syned_user_id)  # a 404: already off the team, which is the aim
        except (GamePlatformAuthError, DeadlineReached):
            raise
        except GamePlatformError as exc:
            return RemovedMember(syned_user_id, "failed", str(exc))
        return RemovedMember(syned_user_id, "removed")

    def _assign(self, team: LinkedTeam, member: TeamMember) -> MemberResult:
        assert member.syned_user_id is not None
        try:
            answer = self.session.client.assign_team(team.game_platform_id, member.syned_user_id)
        except (GamePlatformAuthError, DeadlineReached):
            raise
        except GamePlatformError as exc:
            return MemberResult(member, "failed", str(exc))
        if isinstance(answer, RemoteMissing):
            return MemberResult(member, "failed", answer.describe())
        return MemberResult(member, "assigned")

    def _sync_teams(self) -> DrainEnd:
        assert self.progress is not None
        self._linked_team_of = self.store.linked_team_of_users()
        teams = self.store.linked_teams(self.coach_id, after=self.progress.after_team, page_size=TEAM_PAGE_SIZE)
        return self.session.walk(
            teams, self._sync_team, self._write_teams, result=TeamSync, batch_size=TEAM_WRITE_BATCH
        )

    def _write_teams(self, batch: list[tuple[LinkedTeam, TeamSync]]) -> None:
        assert self.progress is not None
        progress = self.progress.model_copy(deep=True)
        counts = progress.teams
        team_rows: list[TeamMark] = []
        member_rows: list[TeamMemberMark] = []
        for team, result in batch:
            counts.total += 1
            if result.coach_not_approved:
                counts.skipped_coach_not_approved += 1
                progress.add_error("team", team.game_platform_id, COACH_NOT_APPROVED)
                team_rows.append(TeamMark(team.id, False, COACH_NOT_APPROVED))
                continue
            if result.missing is not None or result.error is not None:
                error = result.missing.describe() if result.missing is not None else str(result.error)
                if result.missing is not None:
                    counts.skipped_remote_missing += 1
                else:
                    counts.failed += 1
                progress.add_error("team", team.game_platform_id, error)
                team_rows.append(TeamMark(team.id, False, error))
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
                synced = member.status in ("assigned", "already_assigned")
                member_rows.append(TeamMemberMark(team.id, member.member.competitor_id, synced, member.error))
            for gone in result.removed:
                if gone.status == "removed":
                    counts.members_removed += 1
                else:
                    counts.members_failed += 1
                    failures += 1
                    progress.add_error("team_member", f"{team.game_platform_id}/{gone.syned_user_id}", gone.error or "")
            if failures:
                counts.failed += 1
                team_rows.append(TeamMark(team.id, False, f"{failures} member(s) could not be assigned or removed"))
            else:
                counts.synced += 1
                team_rows.append(TeamMark(team.id, True, None))
        progress.after_team = batch[-1][0].id

        def write() -> SyncProgress:
            if not self.dry_run:
                self.store.record_team_sync(team_rows, member_rows)
            return progress

        self._commit(write)


@dataclass
class _UserTally:
    """A batch of users counted: the sync run's progress past it, and the rows to write."""

    progress: SyncProgress
    states: list[SyncStateRow] = field(default_factory=list)
    activity: list[ActivityRow] = field(default_factory=list)
    competitors: list[CompetitorMark] = field(default_factory=list)


# The fields a solve row takes from the vendor's solve as they are (the NamedTuple
# refuses a row that lacks any of its fields).
_AS_RECEIVED = set(SolveRow._fields) & set(ChallengeSolve.model_fields)


def _solve_and_event_rows(batch: list[tuple[LinkedUser, ScoresFetch]]) -> tuple[list[SolveRow], list[FlashEventRow]]:
    """Rows for the solves and flash-CTF events in a batch, one per key, the last seen winning.

    The vendor has been seen to list a solve twice in one answer (and a flash-CTF
    solve may also appear among the ODL ones); one statement may not upsert a
    row twice, and the later item is the vendor's latest word.
    """
    solves: dict[tuple[str, int], SolveRow] = {}
    events: dict[tuple[str, str], FlashEventRow] = {}
    for user, fetched in batch:
        if fetched.odl is None:
            continue
        uid = user.syned_user_id
        sources: list[tuple[str, str | None, ChallengeSolve]] = [("odl", None, s) for s in fetched.odl.challenge_solves]
        for item in fetched.flash_ctfs:
            events[(uid, item.event_id)] = FlashEventRow(
                syned_user_id=uid,
                event_id=item.event_id,
                flash_ctf_name=item.flash_ctf_name,
                start_unix=item.flash_ctf_time_start_unix,
                end_unix=item.flash_ctf_time_end_unix,
                challenges_solved=item.solved,
                points_earned=item.points_earned,
                max_points_possible=item.max_points_possible,
                rank=item.rank,
                raw_payload=item.raw_payload,
            )
            sources += [("flash_ctf", item.event_id, s) for s in item.challenge_solves]
        for source, event_id, solve in sources:
            key = (uid, solve.challenge_solve_id)
            solves.pop(key, None)  # the last seen goes last, as if it had been the only one
            received = solve.model_dump(include=_AS_RECEIVED)
            solves[key] = SolveRow(
                syned_user_id=uid, source=source, flash_ctf_event_id=event_id, raw_payload=solve.raw_payload, **received
            )
    return list(solves.values()), list(events.values())


def _resume_or_skip(
    ctx: JobContext, store: GamePlatformStore, payload: SyncPayload
) -> tuple[SyncProgress | None, dict[str, Any] | None]:
    """Which sync run this job drives: (its progress, None), (None, None) for a new one, or (None, output) to stop.

    A continuation names its sync run; any other job may be a retry of the job
    that started one. Otherwise a sync run of the same scope still driven by a
    live job makes this one a duplicate, and one whose job is gone is failed so
    that this job starts afresh.
    """
    named = payload.cursor.sync_run_id if payload.cursor is not None else None
    found = store.resume_sync_run(ctx.job_id, named)
    if found is None and named is not None:
        raise PermanentJobError(f"sync run {named} named by this continuation no longer exists")
    if found is not None:
        if found.owned:
            return SyncProgress.model_validate(found.progress), None
        reason = f"sync run {found.id} is {found.status} and driven by job {found.job_id}, not this one"
        return None, sync_output(SyncOutcome(status="superseded", sync_run_id=found.id, reason=reason), payload, None)
    busy = store.supersede_stale_sync_run(payload.coach_id)
    if busy is not None:
        reason = (
            f"sync run {busy.sync_run_id} for the same scope is in progress (job {busy.job_id} is {busy.job_status})"
        )
        outcome = SyncOutcome(status="skipped", sync_run_id=busy.sync_run_id, reason=reason)
        return None, sync_output(outcome, payload, None)
    return None, None


def handle(ctx: JobContext, payload: SyncPayload) -> dict[str, Any]:
    store = GamePlatformStore(ctx.db)
    if payload.dry_run:
        progress, early = payload.cursor, None
    else:
        progress, early = _resume_or_skip(ctx, store, payload)
    if early is not None:
        log("game_platform_sync.stood_down", "warning", job_id=str(ctx.job_id), **early)
        return early
    job: _SyncJob | None = None
    with job_errors():
        try:
            with vendor_session(ctx) as session:
                job = _SyncJob(ctx, payload, store, session)
                return job.drive(progress if progress is not None else job.begin())
        except SyncRunSuperseded as exc:
            log("game_platform_sync.superseded", "warning", job_id=str(ctx.job_id), reason=str(exc))
            outcome = SyncOutcome(status="superseded", reason=str(exc))
            return sync_output(outcome, payload, job.progress if job else None)
        except Exception as exc:
            if job is not None and job.progress is not None and job.progress.sync_run_id is not None:
                _record_failure(ctx, store, job.progress, exc)
            raise


def _record_failure(ctx: JobContext, store: GamePlatformStore, progress: SyncProgress, exc: Exception) -> None:
    """Note why the sync run stopped; on the job's last attempt the sync run fails with it."""
    assert progress.sync_run_id is not None
    error = describe(exc)
    with suppress(Exception):  # the database may be what failed; the job's own error says why
        if ctx.is_last_attempt:
            store.finish_sync_run(
                progress.sync_run_id,
                ctx.job_id,
                status="failed",
                progress=progress.dump(),
                counts=progress.counts(),
                error=error,
            )
        else:
            store.note_sync_run_error(progress.sync_run_id, ctx.job_id, error)


TASK = TaskSpec(SYNC_TASK_TYPE, SyncPayload, handle)
