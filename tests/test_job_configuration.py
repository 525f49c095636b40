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
        report = Worker(db, _unconfigured(clean_db, fake.base_url)).run(limit=1, force=False, trigger_source="test")
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
    Worker(db, _unconfigured(clean_db, fake.base_url)).run(limit=1, force=False, trigger_source="test")
    [row] = drain_queue(db, settings)
    assert (str(row["id"]), row["status"], row["attempts"]) == (job_id, "succeeded", 1)


def test_the_run_reports_it_as_not_done(db, clean_db, fake) -> None:
    enqueue(db, SYNC, {"dryRun": False, "coachId": None})
    report = Worker(db, _unconfigured(clean_db, fake.base_url)).run(limit=1, force=False, trigger_source="test")
    assert report.failed == 1  # counted as not done, so `jobs.py run` exits 1
    assert report.to_json()["results"][0]["status"] == "pending"
