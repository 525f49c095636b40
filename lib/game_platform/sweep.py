"""`game_platform_totals_sweep`: refresh the totals of users the sync flagged.

For up to `batchSize` flagged users, oldest flag first: fetch the full ODL
totals and flash-CTF progress, write `game_platform_stats` for each of the
user's competitors (`challenges_completed` = total solved, `total_score` = total
points, `monthly_ctf_challenges` = flash-CTF solves summed over events, 0 when
the vendor has no flash-CTF progress for the user (404); `last_activity` = the
vendor's `last_accessed_unix_timestamp`, else the latest solve, never moving
back; `synced_at`), then clear the flag, in the same transaction and only if no
new activity was recorded since the sweep read it. A flagged user with no local
competitor, unknown to the platform (404) or not approved on it (403) is
reported and its flag cleared (never left to be swept forever: the sync flags
the user again once it can fetch them); any other error is recorded on the
user's sync state, the flag stays for the next sweep, and the sweep goes on.

The sweep walks a (flag time, user) keyset bounded by its own start, so a
continuation (carrying the cursor) never visits a user twice, and a user
re-flagged meanwhile waits for the next sweep. With `forceAll` it walks every
linked platform user in id order instead, flagged or not, `batchSize` users
per job, each job enqueuing the next until all are done.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from lib.game_platform.fetching import DrainEnd
from lib.game_platform.output import MAX_ITEM_ERRORS, ItemCounts, OutputModel
from lib.game_platform.payloads import TOTALS_SWEEP_TASK_TYPE, SweepRequest
from lib.game_platform.session import ScoresFetch, VendorSession, job_errors, vendor_session
from lib.game_platform.store import (
    ClearedFlag,
    FlaggedUser,
    GamePlatformStore,
    StatsRow,
    TotalsError,
)
from lib.jobs.context import JobContext
from lib.jobs.registry import TaskSpec
from lib.observability import log

PAGE_SIZE = 200
WRITE_BATCH = 100
MAX_RESULTS = MAX_ITEM_ERRORS
ORPHANED = "no local competitor is linked to this Game Platform user"

SweepStatus = Literal["refreshed", "failed", "skipped_remote_missing", "not_approved", "orphaned"]


class SweepResult(OutputModel):
    """One user's outcome (in a dry run, the totals that would be written)."""

    syned_user_id: str
    status: SweepStatus
    competitor_ids: list[UUID] = Field(default_factory=list)
    challenges_completed: int | None = None
    total_score: int | None = None
    monthly_ctf_challenges: int | None = None
    last_activity: datetime | None = None
    error: str | None = None


class SweepCounts(ItemCounts):
    """Users swept, by outcome."""

    refreshed: int = 0
    not_approved: int = 0
    orphaned: int = 0


class SweepCursor(OutputModel):
    """Where a sweep stands; a continuation job's payload carries it."""

    bound: datetime  # flags raised after this wait for the next sweep
    after_since: datetime | None = None
    after_user: str | None = None
    remaining: int
    invocations: int = 1
    counts: SweepCounts = Field(default_factory=SweepCounts)
    batches: int = 1  # forceAll: the batch this job works on
    results: list[SweepResult] = Field(default_factory=list, max_length=MAX_RESULTS)
    results_omitted: int = 0

    def add_result(self, result: SweepResult) -> None:
        """Keep at most MAX_RESULTS, preferring failures: a full list gives up a success for a failure."""
        if len(self.results) < MAX_RESULTS:
            self.results.append(result)
            return
        self.results_omitted += 1
        if result.status == "failed":
            for index in range(len(self.results) - 1, -1, -1):
                if self.results[index].status != "failed":
                    del self.results[index]
                    self.results.append(result)
                    return


class SweepReport(SweepCounts):
    """The job's output: `{total, refreshed, failed, results}` for the whole sweep so far, and what explains them."""

    status: Literal["completed", "continued"]
    results: list[SweepResult]
    results_omitted: int
    invocations: int
    batches: int
    continuation_job_id: UUID | None = None


class SweepPayload(SweepRequest):
    cursor: SweepCursor | None = None


def _listing_order(result: SweepResult) -> int:
    """Failures first, then users set aside, then the refreshed: what an operator looks for comes first."""
    return {"failed": 0, "skipped_remote_missing": 1, "not_approved": 1, "orphaned": 2}.get(result.status, 3)


def sweep_output(
    status: Literal["completed", "continued"],
    payload: SweepRequest,
    cursor: SweepCursor,
    continuation: UUID | None = None,
) -> dict[str, Any]:
    report = SweepReport(
        status=status,
        **cursor.counts.model_dump(by_alias=False),
        results=sorted(cursor.results, key=_listing_order),
        results_omitted=cursor.results_omitted,
        invocations=cursor.invocations,
        batches=cursor.batches,
        continuation_job_id=continuation,
    )
    return {**payload.to_payload(), **report.dump(omit_none=("continuation_job_id",))}


class _Sweep:
    def __init__(
        self,
        ctx: JobContext,
        payload: SweepPayload,
        store: GamePlatformStore,
        session: VendorSession,
        cursor: SweepCursor,
    ) -> None:
        self.ctx = ctx
        self.payload = payload
        self.store = store
        self.session = session
        self.cursor = cursor

    def sweep(self) -> dict[str, Any]:
        counts = self.cursor.counts
        end = self.session.walk(
            self._users(),
            self._fetch,
            self._write,
            result=ScoresFetch,
            batch_size=WRITE_BATCH,
            answered=counts.total > counts.not_approved,
        )
        if end is DrainEnd.OUT_OF_TIME and self.cursor.remaining > 0:
            return self._continue()
        if self.payload.force_all and self.cursor.remaining == 0 and self._more_linked_users():
            return self._continue(next_batch=True)
        log(
            "game_platform_totals_sweep.completed",
            job_id=str(self.ctx.job_id),
            **self.cursor.counts.model_dump(by_alias=False),
        )
        return sweep_output("completed", self.payload, self.cursor)

    def _users(self) -> Iterator[FlaggedUser]:
        """Flagged users after the cursor (every linked user with `forceAll`), at most `remaining` of them."""
        cursor, coach_id = self.cursor, self.payload.coach_id
        if self.payload.force_all:
            return self.store.linked_users_for_sweep(
                coach_id, after=cursor.after_user, page_size=PAGE_SIZE, limit=cursor.remaining
            )
        after = (cursor.after_since, cursor.after_user or "") if cursor.after_since is not None else None
        return self.store.flagged_users(
            coach_id, cursor.bound, after=after, page_size=PAGE_SIZE, limit=cursor.remaining
        )

    def _more_linked_users(self) -> bool:
        return bool(self.store.linked_users_for_sweep_page(self.payload.coach_id, self.cursor.after_user, 1))

    def _fetch(self, user: FlaggedUser) -> ScoresFetch:
        """Runs on a pool thread: a user's full totals (no call for a user with no competitor)."""
        if not user.competitor_ids:
            return ScoresFetch()
        return self.session.fetch_scores(user.syned_user_id, flash=True)

    def _write(self, batch: list[tuple[FlaggedUser, ScoresFetch]]) -> None:
        cursor = self.cursor.model_copy(deep=True)
        counts = cursor.counts
        stats: list[StatsRow] = []
        cleared: list[ClearedFlag] = []
        errors: list[TotalsError] = []
        for user, fetched in batch:
            counts.total += 1
            cursor.remaining -= 1
            uid = user.syned_user_id
            result = SweepResult(syned_user_id=uid, status="refreshed", competitor_ids=list(user.competitor_ids))
            if not user.competitor_ids:
                counts.orphaned += 1
                result.status, result.error = "orphaned", ORPHANED
                cleared.append(ClearedFlag(uid, user.requested_at, refreshed=False, error=result.error))
            elif fetched.odl is not None:
                counts.refreshed += 1
                result.challenges_completed = fetched.odl.total_challenges_solved
                result.total_score = fetched.odl.total_points
                result.monthly_ctf_challenges = sum(item.solved for item in fetched.flash_ctfs)
                result.last_activity = fetched.last_activity
                stats += [
                    StatsRow(
                        competitor_id=cid,
                        challenges_completed=result.challenges_completed,
                        monthly_ctf_challenges=result.monthly_ctf_challenges,
                        total_score=result.total_score,
                        last_activity=result.last_activity,
                    )
                    for cid in user.competitor_ids
                ]
                cleared.append(ClearedFlag(uid, user.requested_at, refreshed=True))
            elif fetched.missing is not None or fetched.refused is not None:
                if fetched.missing is not None:
                    counts.skipped_remote_missing += 1
                    result.status, result.error = "skipped_remote_missing", fetched.missing.describe()
                else:
                    assert fetched.refused is not None
                    counts.not_approved += 1
                    result.status, result.error = "not_approved", fetched.refused.describe()
                cleared.append(ClearedFlag(uid, user.requested_at, refreshed=False, error=result.error))
            else:
                counts.failed += 1
                result.status, result.error = "failed", str(fetched.error)
                errors.append(TotalsError(uid, result.error))
            cursor.add_result(result)
        last = batch[-1][0]
        cursor.after_since, cursor.after_user = last.flagged_since, last.syned_user_id
        if not self.payload.dry_run:
            with self.ctx.db.transaction():
                self.store.write_totals(stats, cleared, errors)
        self.cursor = cursor

    def _continue(self, *, next_batch: bool = False) -> dict[str, Any]:
        """Enqueue the job that carries on: out of time, or (`forceAll`) on to the next batch of users."""
        update: dict[str, Any] = {"invocations": self.cursor.invocations + 1}
        if next_batch:
            update.update(remaining=self.payload.batch_size, batches=self.cursor.batches + 1)
        cursor = self.cursor.model_copy(update=update, deep=True)
        payload = {**self.payload.to_payload(), "cursor": cursor.dump()}
        next_job = self.ctx.queue.enqueue(TOTALS_SWEEP_TASK_TYPE, payload, max_attempts=self.ctx.max_attempts)
        log(
            "game_platform_totals_sweep.continued",
            job_id=str(self.ctx.job_id),
            continuation_job_id=str(next_job),
            **self.cursor.counts.model_dump(by_alias=False),
        )
        return sweep_output("continued", self.payload, self.cursor, continuation=next_job)


def handle(ctx: JobContext, payload: SweepPayload) -> dict[str, Any]:
    store = GamePlatformStore(ctx.db)
    cursor = payload.cursor or SweepCursor(bound=store.now(), remaining=payload.batch_size)
    with job_errors(), vendor_session(ctx) as session:
        return _Sweep(ctx, payload, store, session, cursor).sweep()


TASK = TaskSpec(TOTALS_SWEEP_TASK_TYPE, SweepPayload, handle)
