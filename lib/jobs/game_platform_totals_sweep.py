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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import ConfigDict, Field

from lib.game_platform.errors import (
    DeadlineReached,
    GamePlatformAuthError,
    GamePlatformError,
    GamePlatformUnavailable,
    NotApproved,
    RemoteMissing,
)
from lib.game_platform.fetching import Drain, DrainEnd, Outcome, fetch_in_order
from lib.game_platform.store import FlaggedUser, GamePlatformStore
from lib.jobs.context import JobContext
from lib.jobs.game_platform_common import MAX_ITEM_ERRORS, VendorSession, as_job_error, vendor_session
from lib.jobs.game_platform_payloads import TOTALS_SWEEP_TASK_TYPE, SweepRequest
from lib.jobs.registry import TaskSpec
from lib.jsonnames import CamelModel
from lib.observability import log

PAGE_SIZE = 200
WRITE_BATCH = 100
MAX_RESULTS = MAX_ITEM_ERRORS

SweepStatus = Literal["refreshed", "failed", "skipped_remote_missing", "not_approved", "orphaned"]


class SweepResult(CamelModel):
    """One user's outcome (in a dry run, the totals that would be written)."""

    model_config = ConfigDict(validate_by_name=True, extra="forbid")

    syned_user_id: str
    status: SweepStatus
    competitor_ids: list[UUID] = Field(default_factory=list)
    challenges_completed: int | None = None
    total_score: int | None = None
    monthly_ctf_challenges: int | None = None
    last_activity: datetime | None = None
    error: str | None = None


class SweepCursor(CamelModel):
    """Where a sweep stands; a continuation job's payload carries it."""

    model_config = ConfigDict(validate_by_name=True, extra="forbid")

    bound: datetime  # flags raised after this wait for the next sweep
    after_since: datetime | None = None
    after_user: str | None = None
    remaining: int
    invocations: int = 1
    total: int = 0
    refreshed: int = 0
    failed: int = 0
    skipped_remote_missing: int = 0
    not_approved: int = 0
    orphaned: int = 0
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


class SweepPayload(SweepRequest):
    cursor: SweepCursor | None = None


@dataclass(frozen=True)
class Totals:
    challenges_completed: int
    total_score: int
    monthly_ctf_challenges: int
    last_activity: datetime | None


@dataclass(frozen=True)
class TotalsFetch:
    totals: Totals | None = None
    orphaned: bool = False
    missing: RemoteMissing | None = None
    refused: NotApproved | None = None
    error: GamePlatformError | None = None
    deferred: bool = False


def _outcome(result: TotalsFetch) -> Outcome:
    if result.deferred:
        return Outcome.DEFERRED
    if result.refused is not None:
        return Outcome.REFUSED
    if isinstance(result.error, GamePlatformUnavailable):
        return Outcome.UNAVAILABLE
    return Outcome.DONE


def _describe_refusal(result: TotalsFetch) -> str:
    return result.refused.describe() if result.refused is not None else "refused"


def _error_of(result: TotalsFetch) -> GamePlatformError | None:
    return result.error


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

    def run(self) -> dict[str, Any]:
        results = fetch_in_order(
            self.session.pool,
            self._flagged(),
            self._fetch,
            window=self.session.window,
            keep_going=self.session.budget.can_start_call,
        )
        cursor = self.cursor
        drain: Drain[FlaggedUser, TotalsFetch] = Drain(
            classify=_outcome,
            flush=self._write,
            batch_size=WRITE_BATCH,
            outage_threshold=self.session.outage_threshold,
            error_of=_error_of,
            answered=cursor.total > cursor.not_approved,
            describe_refusal=_describe_refusal,
        )
        end = drain.run(results)
        if end is DrainEnd.OUT_OF_TIME and self.cursor.remaining > 0:
            return self._continue()
        if self.payload.force_all and self.cursor.remaining == 0 and self._more_linked_users():
            return self._continue(next_batch=True)
        log("game_platform_totals_sweep.completed", job_id=str(self.ctx.job_id), **_counts(self.cursor))
        return sweep_output("completed", self.payload, self.cursor)

    def _flagged(self) -> Iterator[FlaggedUser]:
        """Flagged users after the cursor (every linked user with `forceAll`), at most `remaining` of them."""
        cursor = self.cursor
        if self.payload.force_all:
            yield from self._linked(cursor.after_user, cursor.remaining)
            return
        after = (cursor.after_since, cursor.after_user or "") if cursor.after_since is not None else None
        left = cursor.remaining
        while left > 0:
            page = self.store.flagged_users_page(self.payload.coach_id, cursor.bound, after, min(PAGE_SIZE, left))
            yield from page
            left -= len(page)
            if len(page) < PAGE_SIZE:
                return
            since = page[-1].flagged_since
            assert since is not None  # a flagged user says since when (a check constraint)
            after = (since, page[-1].syned_user_id)

    def _linked(self, after: str | None, left: int) -> Iterator[FlaggedUser]:
        while left > 0:
            page = self.store.linked_users_for_sweep_page(self.payload.coach_id, after, min(PAGE_SIZE, left))
            yield from page
            left -= len(page)
            if len(page) < PAGE_SIZE:
                return
            after = page[-1].syned_user_id

    def _more_linked_users(self) -> bool:
        return bool(self.store.linked_users_for_sweep_page(self.payload.coach_id, self.cursor.after_user, 1))

    def _fetch(self, user: FlaggedUser) -> TotalsFetch:
        """Runs on a pool thread: a user's full totals."""
        if not user.competitor_ids:
            return TotalsFetch(orphaned=True)
        client = self.session.client
        try:
            odl = client.get_odl_scores(user.syned_user_id)
            if isinstance(odl, RemoteMissing):
                return TotalsFetch(missing=odl)
            if isinstance(odl, NotApproved):
                return TotalsFetch(refused=odl)
            answer = client.get_flash_ctf_progress(user.syned_user_id)
        except GamePlatformAuthError:
            raise
        except DeadlineReached:
            return TotalsFetch(deferred=True)
        except GamePlatformError as exc:
            return TotalsFetch(error=exc)
        # The user exists (the ODL scores say so): a 404 (or 403) here is no flash-CTF progress.
        flash_ctfs = [] if isinstance(answer, RemoteMissing | NotApproved) else answer.flash_ctfs
        last_activity: int | None = odl.last_accessed_unix_timestamp
        if last_activity is None:
            stamps = [s.timestamp_unix for s in odl.challenge_solves]
            stamps += [s.timestamp_unix for item in flash_ctfs for s in item.challenge_solves]
            last_activity = max((t for t in stamps if t is not None), default=None)
        return TotalsFetch(
            totals=Totals(
                challenges_completed=odl.total_challenges_solved,
                total_score=odl.total_points,
                monthly_ctf_challenges=sum(item.solved for item in flash_ctfs),
                last_activity=datetime.fromtimestamp(last_activity, UTC) if last_activity is not None else None,
            )
        )

    def _write(self, batch: list[tuple[FlaggedUser, TotalsFetch]]) -> None:
        cursor = self.cursor.model_copy(deep=True)
        stats: list[dict[str, Any]] = []
        cleared: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for user, fetched in batch:
            cursor.total += 1
            cursor.remaining -= 1
            uid = user.syned_user_id
            result = SweepResult(syned_user_id=uid, status="refreshed", competitor_ids=list(user.competitor_ids))
            if fetched.totals is not None:
                totals = fetched.totals
                cursor.refreshed += 1
                result.challenges_completed = totals.challenges_completed
                result.total_score = totals.total_score
                result.monthly_ctf_challenges = totals.monthly_ctf_challenges
                result.last_activity = totals.last_activity
                stats += [
                    {
                        "competitor_id": cid,
                        "challenges_completed": totals.challenges_completed,
                        "total_score": totals.total_score,
                        "monthly_ctf_challenges": totals.monthly_ctf_challenges,
                        "last_activity": totals.last_activity,
                    }
                    for cid in user.competitor_ids
                ]
                cleared.append({"syned_user_id": uid, "requested_at": user.requested_at, "refreshed": True})
            elif fetched.orphaned:
                cursor.orphaned += 1
                result.status = "orphaned"
                result.error = "no local competitor is linked to this Game Platform user"
                cleared.append(
                    {"syned_user_id": uid, "requested_at": user.requested_at, "refreshed": False, "error": result.error}
                )
            elif fetched.missing is not None or fetched.refused is not None:
                if fetched.missing is not None:
                    cursor.skipped_remote_missing += 1
                    result.status = "skipped_remote_missing"
                    result.error = fetched.missing.describe()
                else:
                    assert fetched.refused is not None
                    cursor.not_approved += 1
                    result.status = "not_approved"
                    result.error = fetched.refused.describe()
                cleared.append(
                    {"syned_user_id": uid, "requested_at": user.requested_at, "refreshed": False, "error": result.error}
                )
            else:
                cursor.failed += 1
                result.status = "failed"
                result.error = str(fetched.error)
                errors.append({"syned_user_id": uid, "error": result.error})
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
        payload = {**self.payload.to_payload(), "cursor": cursor.model_dump(mode="json")}
        next_job = self.ctx.queue.enqueue(TOTALS_SWEEP_TASK_TYPE, payload, max_attempts=self.ctx.max_attempts)
        log(
            "game_platform_totals_sweep.continued",
            job_id=str(self.ctx.job_id),
            continuation_job_id=str(next_job),
            **_counts(self.cursor),
        )
        return {**sweep_output("continued", self.payload, self.cursor), "continuationJobId": str(next_job)}


def _counts(cursor: SweepCursor) -> dict[str, Any]:
    return {
        "total": cursor.total,
        "refreshed": cursor.refreshed,
        "failed": cursor.failed,
        "skipped_remote_missing": cursor.skipped_remote_missing,
        "not_approved": cursor.not_approved,
        "orphaned": cursor.orphaned,
    }


def _listing_order(result: SweepResult) -> int:
    """Failures first, then users set aside, then the refreshed: what an operator looks for comes first."""
    return {"failed": 0, "skipped_remote_missing": 1, "not_approved": 1, "orphaned": 2}.get(result.status, 3)


def sweep_output(status: str, payload: SweepRequest, cursor: SweepCursor) -> dict[str, Any]:
    """`{total, refreshed, failed, results}` for the whole sweep so far, plus what explains them."""
    return {
        "status": status,
        "dryRun": payload.dry_run,
        "coachId": str(payload.coach_id) if payload.coach_id is not None else None,
        "batchSize": payload.batch_size,
        "forceAll": payload.force_all,
        **_counts(cursor),
        "results": [r.model_dump(mode="json") for r in sorted(cursor.results, key=_listing_order)],
        "resultsOmitted": cursor.results_omitted,
        "invocations": cursor.invocations,
        "batches": cursor.batches,
    }


def handle(ctx: JobContext, payload: SweepPayload) -> dict[str, Any]:
    store = GamePlatformStore(ctx.db)
    cursor = payload.cursor or SweepCursor(bound=store.now(), remaining=payload.batch_size)
    try:
        with vendor_session(ctx) as session:
            return _Sweep(ctx, payload, store, session, cursor).run()
    except Exception as exc:
        job_error = as_job_error(exc)
        if job_error is exc:
            raise
        raise job_error from exc


TASK = TaskSpec(TOTALS_SWEEP_TASK_TYPE, SweepPayload, handle)
