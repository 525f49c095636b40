"""End to end over HTTP: an admin triggers a job, /api/jobs/run runs it on the fake vendor, the database shows it."""

from __future__ import annotations

import time

import pytest

from sandbox.game_platform import FakeGamePlatform, Fault, demo_dataset, local_id
from tests.support.game_platform import count, seed_roster, snapshot
from tests.support.secrets import cron_headers, runner_headers
from tests.support.tokens import admin_headers


@pytest.fixture
def fake():
    platform = FakeGamePlatform(demo_dataset(16, coaches=2, team_size=4))
    platform.start()
    yield platform
    platform.stop()


@pytest.fixture
def apis(admin_env, serve, fake, sql):
    admin_env(
        GAME_PLATFORM_API_BASE_URL=fake.base_url,
        GAME_PLATFORM_API_TOKEN=fake.token,
        GAME_PLATFORM_CONCURRENCY="4",
        GAME_PLATFORM_RETRY_BASE_SECONDS="0.05",
    )
    seed_roster(sql, fake.dataset)
    return {
        "sync": serve("api/admin/jobs/trigger-sync.py"),
        "sweep": serve("api/admin/jobs/trigger-totals-sweep.py"),
        "worker": serve("api/jobs/run.py"),
    }


def trigger(api, body=None):
    response = api.request("POST", body=body or {}, headers=admin_headers())
    assert response.status == 200, response.json
    return response.json


def work(apis, *, method="POST", headers=None):
    response = apis["worker"].request(
        method, body={"limit": 10} if method == "POST" else None, headers=headers or runner_headers()
    )
    assert response.status == 200, response.json
    return response.json


def test_trigger_then_worker_syncs_and_then_sweeps(apis, fake, sql):
    users = fake.dataset.competitors()
    first = trigger(apis["sync"])
    assert trigger(apis["sync"]) == {
        **first,
        "message": "deduplicated: an equal job is already queued",
        "deduplicated": True,
    }

    body = work(apis)
    assert body["processed"] == 1
    (result,) = body["results"]
    assert (result["id"], result["taskType"], result["status"]) == (first["jobId"], "game_platform_sync", "succeeded")
    assert result["lastError"] is None

    job = sql.execute("select output from job_queue where id = %s", (first["jobId"],)).fetchone()
    assert job["output"]["competitors"]["total"] == len(users)
    assert count(sql, "select count(*) from game_platform_sync_state where needs_totals_refresh") == len(users)
    assert count(sql, "select count(*) from game_platform_sync_runs where status = 'completed'") == 1
    for team in fake.dataset.teams.values():
        assert all(fake.dataset.assignments[m] == team.syned_team_id for m in team.members)

    trigger(apis["sweep"], {"batchSize": 1000})
    (result,) = work(apis, method="GET", headers=cron_headers())["results"]
    assert result["status"] == "succeeded"
    assert count(sql, "select count(*) from game_platform_sync_state where needs_totals_refresh") == 0
    for user in users:
        row = sql.execute(
            "select total_score, challenges_completed from game_platform_stats where competitor_id = %s",
            (local_id(user.syned_user_id),),
        ).fetchone()
        assert row["total_score"] == sum(s.points for s in user.odl_solves)
        assert row["challenges_completed"] == len(user.odl_solves)

    # Activity, then the next scheduled sync asks only for what is new and flags only the active user.
    fake.clear_requests()
    fake.add_solve(users[0].syned_user_id, int(time.time()))
    trigger(apis["sync"])
    work(apis)
    assert all("after_time_unix" in r.query for r in fake.requests_for("scores/get_odl_scores"))
    flagged = sql.execute("select syned_user_id from game_platform_sync_state where needs_totals_refresh").fetchall()
    assert [r["syned_user_id"] for r in flagged] == [users[0].syned_user_id]


def test_a_coach_scoped_dry_run_changes_nothing(apis, fake, sql):
    before = snapshot(sql)
    coach = local_id("syned-coach-01")
    job = trigger(apis["sync"], {"dryRun": True, "coachId": str(coach)})
    (result,) = work(apis)["results"]
    assert result["status"] == "succeeded"
    assert snapshot(sql) == before
    output = sql.execute("select output from job_queue where id = %s", (job["jobId"],)).fetchone()["output"]
    mine = [u for u in fake.dataset.competitors() if u.coach_syned_user_id == "syned-coach-01"]
    assert output["dryRun"] is True
    assert output["coachId"] == str(coach)
    assert output["competitors"]["total"] == len(mine)


def test_the_worker_reports_a_vendor_that_refuses_our_token(apis, admin_env, fake, sql):
    admin_env(
        GAME_PLATFORM_API_BASE_URL=fake.base_url,
        GAME_PLATFORM_API_TOKEN="expired-token",
        GAME_PLATFORM_RETRY_BASE_SECONDS="0.05",
    )
    trigger(apis["sync"])
    (result,) = work(apis)["results"]
    assert result["status"] == "pending"
    assert "retryAt" in result
    assert "GAME_PLATFORM_API_TOKEN" in result["lastError"]
    assert "expired-token" not in result["lastError"]


def test_a_missing_user_is_reported_in_the_job_output_not_as_a_failure(apis, fake, sql):
    gone = fake.dataset.competitors()[0].syned_user_id
    fake.inject(Fault(status=404, user=gone))
    job = trigger(apis["sync"])
    (result,) = work(apis)["results"]
    assert result["status"] == "succeeded"
    output = sql.execute("select output from job_queue where id = %s", (job["jobId"],)).fetchone()["output"]
    assert output["competitors"]["skippedRemoteMissing"] == 1
    assert output["errors"][0]["id"] == gone


def test_continuations_run_through_the_worker_until_the_run_completes(apis, admin_env, fake, sql):
    admin_env(
        GAME_PLATFORM_API_BASE_URL=fake.base_url,
        GAME_PLATFORM_API_TOKEN=fake.token,
        GAME_PLATFORM_CONCURRENCY="1",
        JOB_WORKER_MAX_DURATION_SECONDS="1",
        JOB_WORKER_FINISH_MARGIN_SECONDS="0",
        JOB_WORKER_MIN_JOB_SECONDS="0",
    )
    fake.latency = 0.03
    trigger(apis["sync"])
    statuses = []
    for _ in range(30):
        results = work(apis)["results"]
        if not results:
            break
        statuses += [r["status"] for r in results]
    assert len(statuses) >= 2
    assert set(statuses) == {"succeeded"}
    run = sql.execute("select * from game_platform_sync_runs").fetchone()
    assert run["status"] == "completed"
    assert run["invocations"] == len(statuses)
    assert count(sql, "select count(*) from game_platform_sync_state") == len(fake.dataset.competitors())
