"""`game_platform_totals_sweep` through the real worker: flags raised by the sync, cleared with the right totals."""

from __future__ import annotations

import itertools
import time

import pytest

from lib.game_platform.store import ClearedFlag, GamePlatformStore, StatsRow
from sandbox.game_platform import FakeGamePlatform, Fault, FlashCtfResult, demo_dataset, local_id
from tests.support.game_platform import count, drain_queue, enqueue, platform_settings, seed_roster, snapshot

SYNC = "game_platform_sync"
SWEEP = "game_platform_totals_sweep"


@pytest.fixture
def synced(db, sql, fake, settings):
    """The roster seeded and fully synced: every user flagged for a totals refresh."""
    seed_roster(sql, fake.dataset)
    run(db, settings, SYNC, {"dryRun": False, "coachId": None})
    assert count(sql, "select count(*) from game_platform_sync_state where needs_totals_refresh") == len(
        fake.dataset.competitors()
    )


def run(db, settings, task_type=SWEEP, payload=None):
    enqueue(db, task_type, payload if payload is not None else {"dryRun": False, "coachId": None, "batchSize": 100})
    jobs = drain_queue(db, settings)
    assert jobs
    return jobs[-1]


def expected_totals(user):
    stamps = [s.timestamp_unix for s in user.odl_solves] + [s.timestamp_unix for f in user.flash_ctfs for s in f.solves]
    return {
        "challenges_completed": len(user.odl_solves),
        "total_score": sum(s.points for s in user.odl_solves),
        "monthly_ctf_challenges": sum(len(f.solves) for f in user.flash_ctfs),
        "last_activity": max(stamps) if stamps else None,
    }


def stats_of(sql, syned_user_id):
    row = sql.execute(
        "select challenges_completed, total_score, monthly_ctf_challenges,"
        " extract(epoch from last_activity)::bigint as last_activity, synced_at"
        " from game_platform_stats where competitor_id = %s",
        (local_id(syned_user_id),),
    ).fetchone()
    return row


def flagged(sql):
    rows = sql.execute(
        "select syned_user_id from game_platform_sync_state where needs_totals_refresh order by 1"
    ).fetchall()
    return [r["syned_user_id"] for r in rows]


def test_sweep_writes_each_users_totals_and_clears_their_flag(fake, db, sql, settings, synced):
    job = run(db, settings)
    assert job["status"] == "succeeded", job["last_error"]
    users = fake.dataset.competitors()
    out = job["output"]
    assert (out["total"], out["refreshed"], out["failed"]) == (len(users), len(users), 0)
    assert len(out["results"]) == len(users)
    for user in users:
        row = stats_of(sql, user.syned_user_id)
        assert row["synced_at"] is not None
        assert {k: row[k] for k in expected_totals(user)} == expected_totals(user)
        result = next(r for r in out["results"] if r["synedUserId"] == user.syned_user_id)
        assert result["status"] == "refreshed"
        assert result["challengesCompleted"] == len(user.odl_solves)
        assert result["competitorIds"] == [str(local_id(user.syned_user_id))]
    assert flagged(sql) == []
    assert count(sql, "select count(*) from game_platform_sync_state where totals_refreshed_at is null") == 0
    # Full totals: no after_time_unix.
    assert all("after_time_unix" not in r.query for r in fake.requests_for("scores/get_odl_scores")[-len(users) :])


def test_new_activity_flags_only_the_active_user_and_the_next_sweep_counts_it(fake, db, sql, settings, synced):
    run(db, settings)
    active = fake.dataset.competitors()[3]
    before = stats_of(sql, active.syned_user_id)
    fake.add_solve(active.syned_user_id, int(time.time()), points=500)

    sync = run(db, settings, SYNC, {"dryRun": False, "coachId": None})
    assert sync["output"]["competitors"]["flaggedForTotals"] == 1
    assert flagged(sql) == [active.syned_user_id]

    fake.clear_requests()
    out = run(db, settings)["output"]
    assert (out["total"], out["refreshed"]) == (1, 1)
    assert {r.user for r in fake.requests} == {active.syned_user_id}
    after = stats_of(sql, active.syned_user_id)
    assert after["challenges_completed"] == before["challenges_completed"] + 1
    assert after["total_score"] == before["total_score"] + 500
    assert after["last_activity"] > before["last_activity"]
    assert flagged(sql) == []


def test_monthly_ctf_challenges_sum_solves_over_every_flash_ctf(fake, db, sql, settings, synced):
    user = fake.dataset.competitors()[0]
    start = int(time.time()) - 3600
    fake.add_flash_ctf(
        user.syned_user_id,
        FlashCtfResult("Flash CTF: Extra", start, [fake.dataset.solve(start + 10), fake.dataset.solve(start + 20)]),
    )
    run(db, settings)
    assert (
        stats_of(sql, user.syned_user_id)["monthly_ctf_challenges"] == expected_totals(user)["monthly_ctf_challenges"]
    )
    assert stats_of(sql, user.syned_user_id)["last_activity"] == start + 20


def test_batch_size_caps_the_sweep_and_the_oldest_flags_go_first(fake, db, sql, settings, synced):
    users = [u.syned_user_id for u in fake.dataset.competitors()]
    # Re-date the flags: the last users were flagged first.
    for age, uid in enumerate(reversed(users)):
        sql.execute(
            "update game_platform_sync_state set needs_totals_refresh_since = now() - make_interval(mins => %s)"
            " where syned_user_id = %s",
            (100 - age, uid),
        )
    out = run(db, settings, payload={"dryRun": False, "coachId": None, "batchSize": 5})["output"]
    assert out["total"] == 5
    assert [r["synedUserId"] for r in out["results"]] == list(reversed(users))[:5]
    assert flagged(sql) == sorted(users[:-5])


def test_a_flagged_user_with_no_local_competitor_is_reported_and_cleared(fake, db, sql, settings, synced):
    gone = fake.dataset.competitors()[0].syned_user_id
    sql.execute("delete from competitors where game_platform_id = %s", (gone,))
    fake.clear_requests()
    out = run(db, settings)["output"]
    (result,) = [r for r in out["results"] if r["synedUserId"] == gone]
    assert result["status"] == "orphaned"
    assert "no local competitor" in result["error"]
    assert out["orphaned"] == 1
    assert out["refreshed"] == len(fake.dataset.competitors()) - 1
    assert gone not in flagged(sql)
    assert fake.requests_for(user=gone) == [], "the sweep does not call the vendor for an orphan"


def test_a_missing_user_is_cleared_and_a_failing_user_keeps_its_flag(fake, db, sql, settings, synced):
    users = fake.dataset.competitors()
    missing, failing = users[1].syned_user_id, users[2].syned_user_id
    fake.inject(Fault(status=404, user=missing))
    fake.inject(Fault(status=422, user=failing, path="scores/get_flash_ctf_progress", detail="flash CTFs offline"))
    job = run(db, settings)
    assert job["status"] == "succeeded"
    out = job["output"]
    assert out["failed"] == 1
    assert out["skippedRemoteMissing"] == 1
    assert out["refreshed"] == len(users) - 2
    assert flagged(sql) == [failing]
    state = sql.execute("select * from game_platform_sync_state where syned_user_id = %s", (failing,)).fetchone()
    assert "flash CTFs offline" in state["totals_error"]
    assert stats_of(sql, failing)["synced_at"] is None, "no partial totals are written"
    state = sql.execute("select * from game_platform_sync_state where syned_user_id = %s", (missing,)).fetchone()
    assert "not found" in state["totals_error"]
    assert out["results"][0]["status"] == "failed", "failures are listed first"


def test_failures_are_kept_in_the_results_when_they_overflow(db, sql, clean_db):
    dataset = demo_dataset(70, coaches=1, solves_per_user=(0, 1), flash_ctfs=0)
    with FakeGamePlatform(dataset) as platform:
        seed_roster(sql, dataset, skip_teams=True)
        settings = platform_settings(clean_db, platform)
        run(db, settings, SYNC, {"dryRun": False, "coachId": None})
        late = dataset.competitors()[-1].syned_user_id
        platform.inject(Fault(status=422, user=late))
        out = run(db, settings)["output"]
    assert out["total"] == 70
    assert len(out["results"]) == 50
    assert out["resultsOmitted"] == 20
    assert any(r["synedUserId"] == late and r["status"] == "failed" for r in out["results"])


def test_a_dry_run_writes_nothing_and_reports_the_totals_it_would_write(fake, db, sql, settings, synced):
    before = snapshot(sql)
    out = run(db, settings, payload={"dryRun": True, "coachId": None, "batchSize": 100})["output"]
    assert snapshot(sql) == before
    assert out["dryRun"] is True
    assert out["refreshed"] == len(fake.dataset.competitors())
    user = fake.dataset.competitors()[0]
    result = next(r for r in out["results"] if r["synedUserId"] == user.syned_user_id)
    assert result["totalScore"] == expected_totals(user)["total_score"]
    assert result["monthlyCtfChallenges"] == expected_totals(user)["monthly_ctf_challenges"]


def test_a_coach_scoped_sweep_refreshes_only_that_coachs_users(fake, db, sql, settings, synced):
    coach = "syned-coach-02"
    mine = sorted(u.syned_user_id for u in fake.dataset.competitors() if u.coach_syned_user_id == coach)
    out = run(db, settings, payload={"dryRun": False, "coachId": str(local_id(coach)), "batchSize": 100})["output"]
    assert sorted(r["synedUserId"] for r in out["results"]) == mine
    others = sorted(u.syned_user_id for u in fake.dataset.competitors() if u.coach_syned_user_id != coach)
    assert flagged(sql) == others


def test_activity_recorded_while_a_user_is_swept_keeps_the_flag(fake, db, sql, settings, synced):
    """The sweep clears a flag only if no new activity was recorded since it read the user."""
    store = GamePlatformStore(db)
    user = fake.dataset.competitors()[0].syned_user_id
    (read,) = [u for u in store.flagged_users_page(None, store.now(), None, 100) if u.syned_user_id == user]
    # The sync finds a new solve meanwhile and asks for another refresh.
    sql.execute(
        "update game_platform_sync_state set totals_refresh_requested_at = now() where syned_user_id = %s", (user,)
    )
    store.write_totals(
        [StatsRow(competitor_id=read.competitor_ids[0], challenges_completed=1, total_score=1,
                  monthly_ctf_challenges=0, last_activity=None)],
        [ClearedFlag(syned_user_id=user, requested_at=read.requested_at, refreshed=True)],
        [],
    )  # fmt: skip
    assert user in flagged(sql)
    assert stats_of(sql, user)["challenges_completed"] == 1


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_small_time_budget_continues_the_sweep_visiting_each_user_once(db, sql, clean_db, dry_run):
    dataset = demo_dataset(60, coaches=2, team_size=4, flash_ctfs=1)
    users = [u.syned_user_id for u in dataset.competitors()]
    platform = FakeGamePlatform(dataset)
    platform.start()
    try:
        seed_roster(sql, dataset, skip_teams=True)
        run(db, platform_settings(clean_db, platform), SYNC, {"dryRun": False, "coachId": None})
        platform.latency = 0.03
        platform.inject(Fault(status=422, user=users[7]))  # keeps its flag: must still be visited only once
        platform.clear_requests()
        settings = platform_settings(
            clean_db, platform, JOB_WORKER_MAX_DURATION_SECONDS="1", GAME_PLATFORM_CONCURRENCY="2"
        )
        enqueue(db, SWEEP, {"dryRun": dry_run, "coachId": None, "batchSize": 1000})
        jobs = drain_queue(db, settings)
    finally:
        platform.stop()
    assert len(jobs) >= 3
    assert [j["output"]["status"] for j in jobs] == ["continued"] * (len(jobs) - 1) + ["completed"]
    for job, following in itertools.pairwise(jobs):
        assert job["output"]["continuationJobId"] == str(following["id"])
    out = jobs[-1]["output"]
    assert (out["total"], out["refreshed"], out["failed"]) == (60, 59, 1)
    assert out["invocations"] == len(jobs)
    assert flagged(sql) == (sorted(users) if dry_run else [users[7]])
    answered = [r.user for r in platform.requests_for("scores/get_odl_scores") if r.status == 200]
    # A call cut by the budget may be repeated by the continuation; a user is written once.
    assert set(answered) == set(users) - {users[7]}
    written = count(sql, "select count(*) from game_platform_stats where synced_at is not null")
    assert written == (0 if dry_run else 59)


@pytest.mark.parametrize("batch_size", [0, 1001, "10", True])
def test_an_invalid_batch_size_fails_the_job_for_good(fake, db, settings, batch_size):
    job = run(db, settings, payload={"dryRun": False, "coachId": None, "batchSize": batch_size})
    assert job["status"] == "failed"
    assert "batchSize" in job["last_error"]
    assert fake.requests == []
