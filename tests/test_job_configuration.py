"""A worker without the vendor token hands Game Platform jobs back: a configuration error, not a job failure."""

from __future__ import annotations

from lib.settings import load_settings
from lib.worker import Worker
from tests.support.game_platform import drain_queue, enqueue, seed_roster

SYNC = "game_platform_sync"


def _unconfigured(clean_db: str, fake_url: str):
    return load_settings({"DATABASE_URL": clean_db, "GAME_PLATFORM_API_BASE_URL": fake_url})


def test_a_missing_token_leaves_the_job_pending_with_its_attempt_unspent(db, sql, clean_db, fake) -> None:
    seed_roster(sql, fake.dataset)
    job_id = str(enqueue(db, SYNC, {"dryRun": False, "coachId": None}))
    for _ in range(3):  # however often an unconfigured worker tries, the job is not used up
        report = Worker(db, _unconfigured(clean_db, fake.base_url)).drain(limit=1, force=False, trigger_source="test")
        [result] = report.results
        assert (result.id, result.status, result.attempts) == (job_id, "pending", 0)
        assert (
            result.last_error
            == "configuration error: GAME_PLATFORM_API_TOKEN is not set: the Game Platform cannot be called."
        )
    row = sql.execute("select status, attempts, completed_at from job_queue where id = %s", (job_id,)).fetchone()
    assert (row["status"], row["attempts"], row["completed_at"]) == ("pending", 0, None)
    assert fake.requests == []
    assert sql.execute("select count(*) as n from game_platform_sync_runs").fetchone()["n"] == 0


def test_the_handed_back_job_runs_once_a_worker_has_the_token(db, sql, clean_db, fake, settings) -> None:
    seed_roster(sql, fake.dataset)
    job_id = str(enqueue(db, SYNC, {"dryRun": False, "coachId": None}))
    Worker(db, _unconfigured(clean_db, fake.base_url)).drain(limit=1, force=False, trigger_source="test")
    [row] = drain_queue(db, settings)
    assert (str(row["id"]), row["status"], row["attempts"]) == (job_id, "succeeded", 1)


def test_the_run_reports_it_as_not_done(db, clean_db, fake) -> None:
    enqueue(db, SYNC, {"dryRun": False, "coachId": None})
    report = Worker(db, _unconfigured(clean_db, fake.base_url)).drain(limit=1, force=False, trigger_source="test")
    assert report.failed == 1  # counted as not done, so `jobs.py run` exits 1
    assert report.to_json()["results"][0]["status"] == "pending"


def test_a_worker_that_may_fan_out_hands_the_job_back_a_minute_later(db, sql, clean_db) -> None:
    """A follow-up started at once would claim it again, lack the same setting, and so on to the chain's bounds."""
    from pydantic import BaseModel

    from lib.errors import JobNotConfigured
    from lib.jobs.registry import TaskRegistry, TaskSpec
    from lib.worker import NOT_CONFIGURED_DELAY

    class Empty(BaseModel):
        pass

    def unconfigured(ctx, payload):
        raise JobNotConfigured("VENDOR_TOKEN is not set")

    registry = TaskRegistry()
    registry.register(TaskSpec("needs_token", Empty, unconfigured, quick=True))
    started: list[int] = []

    def follow_ups(chain, count, limit) -> int:
        started.append(count)
        return 0

    job_id = sql.execute("select job_queue_enqueue('needs_token', '{}'::jsonb, now(), 3) as id").fetchone()["id"]
    settings = load_settings({"DATABASE_URL": clean_db})
    worker = Worker(db, settings, registry=registry, follow_ups=follow_ups)
    [result] = worker.drain(limit=1, force=False, trigger_source="test").results
    assert (result.status, result.attempts) == ("pending", 0)
    row = sql.execute(
        "select status, attempts, extract(epoch from run_at - now()) as due_in from job_queue where id = %s", (job_id,)
    ).fetchone()
    assert (row["status"], row["attempts"]) == ("pending", 0)
    delay = NOT_CONFIGURED_DELAY.total_seconds()
    assert delay - 10 < float(row["due_in"]) <= delay
    # Not due: the follow-ups this invocation tried to start find nothing to claim.
    assert sql.execute("select count(*) as n from job_queue where run_at <= now()").fetchone()["n"] == 0
    assert worker.drain(limit=1, force=False, trigger_source="test").results == []
