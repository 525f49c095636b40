"""`game_platform_sync` through the real worker, against the fake vendor and a real database."""

from __future__ import annotations

import itertools
import threading
import time
from uuid import uuid4

import psycopg
import pytest

from lib.game_platform.sync import INCREMENTAL_OVERLAP_SECONDS, TASK
from lib.jobs.context import JobContext
from lib.queue import Queue
from lib.worker import Worker
from sandbox.game_platform import FakeGamePlatform, Fault, FlashCtfResult, demo_dataset, local_id
from tests.support.game_platform import count, drain_queue, enqueue, platform_settings, seed_roster, snapshot
from tests.support.jobs import JobFactory

SYNC = "game_platform_sync"
SWEEP = "game_platform_totals_sweep"
DEFAULT_SYNC = {"dryRun": False, "coachId": None}


@pytest.fixture
def roster(sql, fake):
    return seed_roster(sql, fake.dataset)


def sync(db, settings, payload=None):
    enqueue(db, SYNC, payload or DEFAULT_SYNC)
    jobs = drain_queue(db, settings)
    assert jobs, "no job ran"
    return jobs[-1]


def run_start(sql, run_id=None):
    query = "select * from game_platform_sync_runs order by id desc limit 1"
    if run_id is not None:
        return sql.execute("select * from game_platform_sync_runs where id = %s", (run_id,)).fetchone()
    return sql.execute(query).fetchone()


# -- full sync -------------------------------------------------------------------


def test_full_sync_stores_every_solve_and_flash_ctf_and_flags_everyone(fake, db, sql, settings, roster):
    job = sync(db, settings)
    assert job["status"] == "succeeded", job["last_error"]
    users = fake.dataset.competitors()
    out = job["output"]
    assert out["status"] == "completed"
    assert out["fullSync"] is True
    assert out["competitors"]["total"] == len(users)
    assert out["competitors"]["failed"] == out["competitors"]["skippedRemoteMissing"] == 0
    assert out["competitors"]["flaggedForTotals"] == len(users), "no competitor has totals yet"

    odl = sum(len(u.odl_solves) for u in users)
    flash = sum(len(f.solves) for u in users for f in u.flash_ctfs)
    assert count(sql, "select count(*) from game_platform_challenge_solves where source = 'odl'") == odl
    assert count(sql, "select count(*) from game_platform_challenge_solves where source = 'flash_ctf'") == flash
    assert out["competitors"]["newSolves"] == odl + flash
    events = sum(len(u.flash_ctfs) for u in users)
    assert count(sql, "select count(*) from game_platform_flash_ctf_events") == events

    run = run_start(sql)
    assert run["status"] == "completed"
    assert run["full_sync"] is True
    assert run["counts"]["competitors"]["total"] == len(users)
    states = sql.execute("select * from game_platform_sync_state order by syned_user_id").fetchall()
    assert [s["syned_user_id"] for s in states] == [u.syned_user_id for u in users]
    for state in states:
        assert state["last_synced_at"] == run["started_at"]
        assert state["last_result"] in ("updated", "unchanged")
        assert state["needs_totals_refresh"] is True
        assert state["error_message"] is None
    assert count(sql, "select count(*) from competitors where game_platform_synced_at is null") == 0

    # A full sync asks for everything: no after_time_unix, and flash-CTF progress for everyone.
    for user in users:
        (request,) = fake.requests_for("scores/get_odl_scores", user=user.syned_user_id)
        assert "after_time_unix" not in request.query
        assert len(fake.requests_for("scores/get_flash_ctf_progress", user=user.syned_user_id)) == 1


def test_full_sync_moves_last_activity_to_the_latest_solve(fake, db, sql, settings, roster):
    sync(db, settings)
    for user in fake.dataset.competitors():
        stamps = [s.timestamp_unix for s in user.odl_solves] + [
            s.timestamp_unix for f in user.flash_ctfs for s in f.solves
        ]
        row = sql.execute(
            "select extract(epoch from last_activity)::bigint as ts from game_platform_stats where competitor_id = %s",
            (local_id(user.syned_user_id),),
        ).fetchone()
        if stamps:
            assert row["ts"] == max(stamps)
        else:
            assert row is None


def test_flash_ctf_solves_keep_their_event(fake, db, sql, settings, roster):
    sync(db, settings)
    user = next(u for u in fake.dataset.competitors() if any(f.solves for f in u.flash_ctfs))
    played = next(f for f in user.flash_ctfs if f.solves)
    event = sql.execute(
        "select * from game_platform_flash_ctf_events where syned_user_id = %s and flash_ctf_name = %s",
        (user.syned_user_id, played.name),
    ).fetchone()
    assert event["challenges_solved"] == len(played.solves)
    assert event["points_earned"] == sum(s.points for s in played.solves)
    assert int(event["started_at"].timestamp()) == played.start_unix
    solved = count(
        sql,
        "select count(*) from game_platform_challenge_solves where syned_user_id = %s and flash_ctf_event_id = %s",
        (user.syned_user_id, event["event_id"]),
    )
    assert solved == len(played.solves)


# -- rosters ---------------------------------------------------------------------


def test_roster_sync_assigns_only_members_the_platform_does_not_list(fake, db, sql, settings, roster):
    listed_before = dict(fake.dataset.assignments)
    job = sync(db, settings)
    members = roster["team_members"]
    to_assign = [
        m for team in fake.dataset.teams.values() for m in team.members if listed_before.get(m) != team.syned_team_id
    ]
    assert to_assign, "the demo data leaves members to assign"
    posted = sorted((r.body["syned_team_id"], r.body["syned_user_id"]) for r in fake.requests_for("users/assign_team"))
    assert posted == sorted((fake.dataset.assignments[m], m) for m in to_assign)
    for team in fake.dataset.teams.values():
        assert all(fake.dataset.assignments[m] == team.syned_team_id for m in team.members)

    teams = job["output"]["teams"]
    assert teams["total"] == len(fake.dataset.teams)
    assert teams["synced"] == len(fake.dataset.teams)
    assert teams["membersAssigned"] == len(to_assign)
    assert teams["membersAlreadyAssigned"] == len(members) - len(to_assign)
    assert count(sql, "select count(*) from team_members where game_platform_synced_at is null") == 0
    assert count(sql, "select count(*) from teams where game_platform_synced_at is null") == 0

    # The next run finds everyone listed and assigns no one.
    fake.clear_requests()
    teams = sync(db, settings)["output"]["teams"]
    assert fake.requests_for("users/assign_team") == []
    assert teams["membersAssigned"] == 0
    assert teams["membersAlreadyAssigned"] == len(members)


def test_unlinked_teams_and_members_without_a_platform_id_are_left_alone(fake, db, sql, settings, roster):
    team = roster["teams"][0]
    sql.execute("update teams set game_platform_id = null where id = %s", (roster["teams"][1]["id"],))
    loner = sql.execute(
        "insert into competitors (coach_id, first_name) values (%s, 'Unlinked') returning id", (team["coach_id"],)
    ).fetchone()["id"]
    sql.execute("insert into team_members (team_id, competitor_id) values (%s, %s)", (team["id"], loner))
    out = sync(db, settings)["output"]
    assert out["teams"]["total"] == len(roster["teams"]) - 1
    assert out["teams"]["membersWithoutPlatformId"] == 1
    assert out["competitors"]["total"] == len(fake.dataset.competitors()), "unlinked competitors are not synced"
    assert {r.query.get("syned_team_id") for r in fake.requests_for("users/get_team_assignments")} == {
        t["game_platform_id"] for t in roster["teams"][:1] + roster["teams"][2:]
    }
    member = sql.execute("select * from team_members where competitor_id = %s", (loner,)).fetchone()
    assert member["game_platform_synced_at"] is None
    assert "no Game Platform id" in member["game_platform_sync_error"]


def test_a_team_unknown_to_the_platform_is_recorded(fake, db, sql, settings, roster):
    team = roster["teams"][0]
    sql.execute("update teams set game_platform_id = 'syned-team-gone' where id = %s", (team["id"],))
    out = sync(db, settings)["output"]
    assert out["teams"]["skippedRemoteMissing"] == 1
    row = sql.execute("select * from teams where id = %s", (team["id"],)).fetchone()
    assert "Team not found" in row["game_platform_sync_error"]
    assert row["game_platform_synced_at"] is None
    assert any(e["kind"] == "team" and e["id"] == "syned-team-gone" for e in out["errors"])


# -- incremental sync ------------------------------------------------------------


def test_incremental_sync_asks_only_for_solves_after_the_last_run(fake, db, sql, settings, roster):
    sync(db, settings)
    first = run_start(sql)
    solves_before = count(sql, "select count(*) from game_platform_challenge_solves")
    fake.clear_requests()
    active = fake.dataset.competitors()[0].syned_user_id
    fake.add_solve(active, int(time.time()), points=250)

    job = sync(db, settings)
    out = job["output"]
    assert out["fullSync"] is False
    expected_after = int(first["started_at"].timestamp()) - INCREMENTAL_OVERLAP_SECONDS
    odl_requests = fake.requests_for("scores/get_odl_scores")
    assert len(odl_requests) == len(fake.dataset.competitors())
    assert {r.query["after_time_unix"] for r in odl_requests} == {str(expected_after)}
    assert count(sql, "select count(*) from game_platform_challenge_solves") == solves_before + 1
    assert (
        count(
            sql,
            "select count(*) from (select 1 from game_platform_challenge_solves"
            " group by syned_user_id, challenge_solve_id having count(*) > 1) d",
        )
        == 0
    )
    assert out["competitors"]["updated"] == 1
    assert out["competitors"]["newSolves"] == 1
    assert out["competitors"]["unchanged"] == len(fake.dataset.competitors()) - 1
    state = sql.execute("select * from game_platform_sync_state where syned_user_id = %s", (active,)).fetchone()
    assert state["last_result"] == "updated"
    assert state["last_synced_at"] == run_start(sql)["started_at"]


def test_a_user_whose_last_sync_failed_is_asked_from_their_last_good_sync(fake, db, sql, settings, roster):
    flaky = fake.dataset.competitors()[1].syned_user_id
    sync(db, settings)
    first = run_start(sql)
    fake.inject(Fault(status=422, user=flaky, path="scores/get_odl_scores", times=1, detail="bad luck"))
    sync(db, settings)
    fake.clear_requests()
    sync(db, settings)
    (request,) = fake.requests_for("scores/get_odl_scores", user=flaky)
    assert request.query["after_time_unix"] == str(int(first["started_at"].timestamp()) - INCREMENTAL_OVERLAP_SECONDS)


def test_a_competitor_linked_since_the_last_run_gets_a_full_first_sync(fake, db, sql, settings, roster):
    newcomer = fake.dataset.competitors()[0]
    sql.execute("update competitors set game_platform_id = null where game_platform_id = %s", (newcomer.syned_user_id,))
    sync(db, settings)
    sql.execute(
        "update competitors set game_platform_id = %s where id = %s",
        (newcomer.syned_user_id, local_id(newcomer.syned_user_id)),
    )
    fake.clear_requests()
    sync(db, settings)
    (request,) = fake.requests_for("scores/get_odl_scores", user=newcomer.syned_user_id)
    assert "after_time_unix" not in request.query
    assert len(fake.requests_for("scores/get_flash_ctf_progress", user=newcomer.syned_user_id)) == 1
    assert count(
        sql, "select count(*) from game_platform_challenge_solves where syned_user_id = %s", (newcomer.syned_user_id,)
    ) == len(newcomer.odl_solves) + sum(len(f.solves) for f in newcomer.flash_ctfs)


def test_flash_ctf_progress_is_fetched_for_everyone_only_when_a_sentinel_shows_news(fake, db, sql, settings, roster):
    users = fake.dataset.competitors()
    sync(db, settings)

    fake.clear_requests()
    out = sync(db, settings)["output"]
    assert out["flashCtfProgress"] == "first-time users only"
    asked = fake.requests_for("scores/get_flash_ctf_progress")
    assert 0 < len(asked) <= 3, "only the sentinels are asked when nothing is new"

    # A new flash CTF that everyone played: the sentinels see it, so everyone is fetched.
    start = int(time.time()) - 600
    for user in users:
        fake.add_flash_ctf(user.syned_user_id, FlashCtfResult("Flash CTF: Night Owl", start, rank=5))
    solver = users[-1].syned_user_id
    fake.dataset.users[solver].flash_ctfs[-1].solves.append(fake.dataset.solve(start + 60, points=300))
    fake.clear_requests()
    out = sync(db, settings)["output"]
    assert out["flashCtfProgress"] == "all users"
    assert {r.user for r in fake.requests_for("scores/get_flash_ctf_progress")} == {u.syned_user_id for u in users}
    assert count(
        sql, "select count(*) from game_platform_flash_ctf_events where flash_ctf_name = 'Flash CTF: Night Owl'"
    ) == len(users)
    assert out["competitors"]["updated"] == 1
    flagged = sql.execute("select syned_user_id from game_platform_sync_state where last_result = 'updated'").fetchall()
    assert [r["syned_user_id"] for r in flagged] == [solver]


# -- coach scope -----------------------------------------------------------------


def test_a_coach_scoped_sync_touches_only_that_coachs_competitors_and_teams(fake, db, sql, settings, roster):
    coach = "syned-coach-01"
    mine = {u.syned_user_id for u in fake.dataset.competitors() if u.coach_syned_user_id == coach}
    my_teams = {t.syned_team_id for t in fake.dataset.teams.values() if t.coach_syned_user_id == coach}
    assert 0 < len(mine) < len(fake.dataset.competitors())

    job = sync(db, settings, {"dryRun": False, "coachId": str(local_id(coach))})
    assert job["output"]["competitors"]["total"] == len(mine)
    assert {r.user for r in fake.requests if r.path.startswith("scores/")} == mine
    assert {r.query["syned_team_id"] for r in fake.requests_for("users/get_team_assignments")} == my_teams
    assert {r.body["syned_team_id"] for r in fake.requests_for("users/assign_team")} <= my_teams
    states = {r["syned_user_id"] for r in sql.execute("select syned_user_id from game_platform_sync_state")}
    assert states == mine
    assert (
        count(
            sql,
            "select count(*) from competitors where game_platform_synced_at is not null and coach_id <> %s",
            (local_id(coach),),
        )
        == 0
    )
    assert run_start(sql)["coach_id"] == local_id(coach)

    # A coach's completed run does not make the next unscoped run incremental for everyone else.
    fake.clear_requests()
    assert sync(db, settings)["output"]["fullSync"] is True
    for request in fake.requests_for("scores/get_odl_scores"):
        assert ("after_time_unix" in request.query) == (request.user in mine)


# -- per-user failures -----------------------------------------------------------


def test_a_missing_user_and_a_flaky_user_do_not_fail_the_run(fake, db, sql, settings, roster):
    users = fake.dataset.competitors()
    missing, flaky = users[2].syned_user_id, users[5].syned_user_id
    fake.inject(Fault(status=404, user=missing))
    fake.inject(Fault(status=500, user=flaky, times=2))

    job = sync(db, settings)
    assert job["status"] == "succeeded"
    out = job["output"]["competitors"]
    assert out["skippedRemoteMissing"] == 1
    assert out["failed"] == 0
    assert out["total"] == len(users)
    assert [e["id"] for e in job["output"]["errors"] if e["kind"] == "competitor"] == [missing]

    competitor = sql.execute("select * from competitors where game_platform_id = %s", (missing,)).fetchone()
    assert "not found on the Game Platform" in competitor["game_platform_sync_error"]
    assert competitor["game_platform_synced_at"] is None
    state = sql.execute("select * from game_platform_sync_state where syned_user_id = %s", (missing,)).fetchone()
    assert state["last_result"] == "remote_missing"
    assert state["needs_totals_refresh"] is False
    assert state["last_synced_at"] is None

    state = sql.execute("select * from game_platform_sync_state where syned_user_id = %s", (flaky,)).fetchone()
    assert state["last_result"] in ("updated", "unchanged")
    assert [r.status for r in fake.requests_for("scores/get_odl_scores", user=flaky)] == [500, 500, 200]


def test_a_user_the_vendor_keeps_rejecting_is_recorded_and_the_run_completes(fake, db, sql, settings, roster):
    bad = fake.dataset.competitors()[3].syned_user_id
    fake.inject(Fault(status=422, user=bad, detail=[{"loc": ["query", "syned_user_id"], "msg": "bad id", "type": "x"}]))
    job = sync(db, settings)
    assert job["status"] == "succeeded"
    assert job["output"]["competitors"]["failed"] == 1
    (error,) = [e for e in job["output"]["errors"] if e["id"] == bad]
    assert "422" in error["error"]
    assert "query.syned_user_id: bad id" in error["error"]
    state = sql.execute("select * from game_platform_sync_state where syned_user_id = %s", (bad,)).fetchone()
    assert state["last_result"] == "failed"
    assert "bad id" in state["error_message"]
    assert run_start(sql)["status"] == "completed"


def test_a_recovered_user_has_its_error_cleared(fake, db, sql, settings, roster):
    bad = fake.dataset.competitors()[3].syned_user_id
    fake.inject(Fault(status=404, user=bad, times=1))
    sync(db, settings)
    sync(db, settings)
    competitor = sql.execute("select * from competitors where game_platform_id = %s", (bad,)).fetchone()
    assert competitor["game_platform_sync_error"] is None
    assert competitor["game_platform_synced_at"] is not None


def test_per_item_errors_are_capped_at_fifty(db, sql, clean_db):
    dataset = demo_dataset(60, coaches=1, solves_per_user=(0, 1), flash_ctfs=0)
    with FakeGamePlatform(dataset) as platform:
        seed_roster(sql, dataset, skip_teams=True)
        platform.inject(Fault(status=404, path="scores/get_odl_scores"))
        job = sync(db, platform_settings(clean_db, platform))
    out = job["output"]
    assert out["competitors"]["skippedRemoteMissing"] == 60
    assert len(out["errors"]) == 50
    assert out["errorsOmitted"] == 10


# -- run-level failures ----------------------------------------------------------


def test_an_unreachable_vendor_fails_the_job_for_a_retry_without_blaming_users(db, sql, clean_db, fake, roster):
    fake.stop()  # nothing listens on its port any more
    settings = platform_settings(
        clean_db, fake, GAME_PLATFORM_MAX_ATTEMPTS="2", GAME_PLATFORM_RETRY_BASE_SECONDS="0.01"
    )
    job = sync(db, settings)
    assert job["status"] == "pending", "the queue retries the job"
    assert "failed 10 calls in a row" in job["last_error"]
    assert count(sql, "select count(*) from game_platform_sync_state") == 0
    run = run_start(sql)
    assert run["status"] == "running", "the retry resumes the run"
    assert "failed 10 calls in a row" in run["error"]


def test_a_retried_job_resumes_its_run_after_the_last_written_batch(fake, db, sql, clean_db, roster):
    users = [u.syned_user_id for u in fake.dataset.competitors()]
    settings = platform_settings(clean_db, fake, GAME_PLATFORM_CONCURRENCY="1", GAME_PLATFORM_MAX_ATTEMPTS="1")
    # Two users answer, then the vendor goes down for the ten others: an outage, not ten user failures.
    outage = fake.inject(Fault(status=503, path="scores/get_odl_scores", skip=2))
    job_id = enqueue(db, SYNC, DEFAULT_SYNC)
    Worker(db, settings).drain(limit=1, force=False, trigger_source="test")
    assert Queue(db).status_of(job_id) == "pending"
    written = [r["syned_user_id"] for r in sql.execute("select syned_user_id from game_platform_sync_state order by 1")]
    assert written == users[:2]

    outage.times = 0  # the vendor is back
    fake.clear_requests()
    JobFactory(sql).stage(job_id, due=True)
    (job,) = drain_queue(db, settings)
    assert job["id"] == job_id
    assert job["status"] == "succeeded"
    assert {r.user for r in fake.requests_for("scores/get_odl_scores")} == set(users[2:])
    assert job["output"]["syncRunId"] == run_start(sql)["id"]
    assert count(sql, "select count(*) from game_platform_sync_runs") == 1
    assert job["output"]["competitors"]["total"] == len(users)
    assert job["output"]["competitors"]["failed"] == 0


def test_a_rate_limit_on_every_call_reschedules_the_job_after_retry_after(fake, db, sql, settings, roster):
    fake.inject(Fault(status=429, retry_after="90"))
    job = sync(db, settings)
    assert job["status"] == "pending"
    assert "rate limited" in job["last_error"]
    delay = (job["run_at"] - job["updated_at"]).total_seconds()
    assert 85 <= delay <= 95
    assert count(sql, "select count(*) from game_platform_sync_state") == 0


def test_bad_credentials_fail_the_job_naming_the_token_variable(fake, db, sql, clean_db, roster):
    settings = platform_settings(clean_db, fake, GAME_PLATFORM_API_TOKEN="not-the-token")
    job = sync(db, settings)
    assert job["status"] == "pending"
    assert "GAME_PLATFORM_API_TOKEN" in job["last_error"]
    assert "not-the-token" not in job["last_error"]
    assert count(sql, "select count(*) from game_platform_sync_state") == 0


def test_an_unset_token_hands_the_job_back_with_its_attempt_unspent(fake, db, sql, clean_db, roster):
    settings = platform_settings(clean_db, fake, GAME_PLATFORM_API_TOKEN="")
    job_id = enqueue(db, SYNC, DEFAULT_SYNC)
    [result] = Worker(db, settings).drain(limit=1, force=False, trigger_source="test").results
    assert (result.status, result.attempts) == ("pending", 0)
    assert result.last_error == (
        "configuration error: GAME_PLATFORM_API_TOKEN is not set: the Game Platform cannot be called."
    )
    row = sql.execute("select status, attempts from job_queue where id = %s", (job_id,)).fetchone()
    assert (row["status"], row["attempts"]) == ("pending", 0)
    assert count(sql, "select count(*) from game_platform_sync_runs") == 0


@pytest.mark.parametrize(
    "payload",
    [
        {"dryRun": "yes", "coachId": None},
        {"dryRun": False, "coachId": "not-a-uuid"},
        {"dryRun": False, "coachId": None, "batchSize": 10},
        {"dryRun": False, "coachId": None, "cursor": {"startedAt": "yesterday"}},
    ],
)
def test_an_invalid_payload_fails_for_good(fake, db, settings, payload):
    job = sync(db, settings, payload)
    assert job["status"] == "failed"
    assert job["last_error"].startswith("invalid payload for game_platform_sync")
    assert fake.requests == []


# -- dry run ---------------------------------------------------------------------


def test_a_dry_run_writes_nothing_and_reports_what_would_change(fake, db, sql, settings, roster):
    before = snapshot(sql)
    job = sync(db, settings, {"dryRun": True, "coachId": None})
    assert job["status"] == "succeeded"
    assert snapshot(sql) == before
    out = job["output"]
    users = fake.dataset.competitors()
    assert out["dryRun"] is True
    assert out["syncRunId"] is None
    assert out["competitors"]["total"] == len(users)
    assert out["competitors"]["newSolves"] == sum(len(u.odl_solves) for u in users) + sum(
        len(f.solves) for u in users for f in u.flash_ctfs
    )
    assert out["competitors"]["flaggedForTotals"] == len(users)
    assert out["teams"]["membersAssigned"] > 0
    assert fake.requests_for("users/assign_team") == [], "a dry run assigns no one on the platform"


def test_a_dry_run_after_a_sync_reports_only_the_news(fake, db, sql, settings, roster):
    sync(db, settings)
    active = fake.dataset.competitors()[4].syned_user_id
    fake.add_solve(active, int(time.time()))
    before = snapshot(sql)
    out = sync(db, settings, {"dryRun": True, "coachId": None})["output"]
    assert snapshot(sql) == before
    assert out["competitors"]["updated"] == 1
    assert out["competitors"]["newSolves"] == 1
    assert out["teams"]["membersAssigned"] == 0


# -- time budget and continuation -------------------------------------------------


@pytest.fixture
def write_counter(sql):
    """Count every write to a user's sync state: a user synced twice in one run is written twice."""
    sql.execute(
        "create table if not exists test_sync_state_writes (syned_user_id text not null);"
        "create or replace function test_count_sync_state_write() returns trigger language plpgsql as $$"
        " begin insert into test_sync_state_writes values (new.syned_user_id); return new; end $$;"
        "drop trigger if exists test_count_sync_state_write on game_platform_sync_state;"
        "create trigger test_count_sync_state_write after insert or update on game_platform_sync_state"
        " for each row execute function test_count_sync_state_write();"
    )
    yield lambda: {
        r["syned_user_id"]: r["n"]
        for r in sql.execute("select syned_user_id, count(*) as n from test_sync_state_writes group by 1")
    }
    sql.execute(
        "drop trigger if exists test_count_sync_state_write on game_platform_sync_state;"
        "drop function if exists test_count_sync_state_write(); drop table if exists test_sync_state_writes;"
    )


def _slow_run(clean_db, sql, users):
    dataset = demo_dataset(users, coaches=2, team_size=4)
    platform = FakeGamePlatform(dataset, latency=0.02)
    platform.start()
    seed_roster(sql, dataset)
    settings = platform_settings(clean_db, platform, JOB_WORKER_MAX_DURATION_SECONDS="1", GAME_PLATFORM_CONCURRENCY="2")
    return platform, settings


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_small_time_budget_continues_the_run_covering_everyone_exactly_once(
    db, sql, clean_db, write_counter, dry_run
):
    platform, settings = _slow_run(clean_db, sql, users=80)
    try:
        before = snapshot(sql)
        enqueue(db, SYNC, {"dryRun": dry_run, "coachId": None})
        jobs = drain_queue(db, settings)
    finally:
        platform.stop()
    assert len(jobs) >= 3, "the budget was meant to split the run"
    assert all(j["status"] == "succeeded" for j in jobs), [j["last_error"] for j in jobs]
    assert [j["output"]["status"] for j in jobs] == ["continued"] * (len(jobs) - 1) + ["completed"]
    for job, following in itertools.pairwise(jobs):
        assert job["output"]["continuationJobId"] == str(following["id"])
        assert following["payload"]["cursor"]["invocations"] == job["output"]["invocations"] + 1
    out = jobs[-1]["output"]
    assert out["invocations"] == len(jobs)
    assert out["competitors"]["total"] == 80
    assert out["teams"]["total"] == len(platform.dataset.teams)
    expected_solves = sum(
        len(u.odl_solves) + sum(len(f.solves) for f in u.flash_ctfs) for u in platform.dataset.competitors()
    )
    assert out["competitors"]["newSolves"] == expected_solves
    if dry_run:
        assert snapshot(sql) == before
        assert write_counter() == {}
        return
    writes = write_counter()
    assert set(writes) == {u.syned_user_id for u in platform.dataset.competitors()}, "no user skipped"
    assert set(writes.values()) == {1}, "no user synced twice"
    run = run_start(sql)
    assert run["status"] == "completed"
    assert run["invocations"] == len(jobs)
    assert count(sql, "select count(*) from game_platform_challenge_solves") == expected_solves


def test_a_job_that_handed_its_run_over_writes_nothing_if_run_again(db, sql, clean_db):
    platform, settings = _slow_run(clean_db, sql, users=40)
    try:
        first = enqueue(db, SYNC, DEFAULT_SYNC)
        Worker(db, settings).drain(limit=1, force=False, trigger_source="test")
        row = sql.execute("select * from job_queue where id = %s", (first,)).fetchone()
        assert row["output"]["status"] == "continued"

        before = snapshot(sql)
        ctx = JobContext(
            job_id=first,
            task_type=SYNC,
            attempts=2,
            max_attempts=5,
            deadline=time.monotonic() + 30,
            db=db,
            queue=Queue(db),
            settings=settings,
        )
        out = TASK.handle(ctx, TASK.payload_model.model_validate(row["payload"]))
    finally:
        platform.stop()
    assert out["status"] == "superseded"
    assert snapshot(sql) == before
    assert count(sql, "select count(*) from job_queue where task_type = %s and status = 'pending'", (SYNC,)) == 1


def test_a_new_sync_waits_while_a_run_of_the_same_scope_is_in_progress(db, sql, clean_db):
    platform, settings = _slow_run(clean_db, sql, users=40)
    try:
        enqueue(db, SYNC, DEFAULT_SYNC)
        Worker(db, settings).drain(limit=1, force=False, trigger_source="test")
        ctx = JobContext(
            job_id=uuid4(),
            task_type=SYNC,
            attempts=1,
            max_attempts=5,
            deadline=time.monotonic() + 30,
            db=db,
            queue=Queue(db),
            settings=settings,
        )
        platform.clear_requests()
        out = TASK.handle(ctx, TASK.payload_model.model_validate(DEFAULT_SYNC))
    finally:
        platform.stop()
    assert out["status"] == "skipped"
    assert "in progress" in out["reason"]
    assert platform.requests == []
    assert count(sql, "select count(*) from game_platform_sync_runs") == 1


def test_a_job_that_loses_its_run_mid_batch_rolls_the_batch_back(fake, db, sql, clean_db, roster):
    """Each batch commits with the run's checkpoint, fenced by the owning job: a stale owner writes nothing."""
    fake.latency = 0.05
    settings = platform_settings(clean_db, fake, GAME_PLATFORM_CONCURRENCY="2")
    job_id = enqueue(db, SYNC, DEFAULT_SYNC)
    usurper = uuid4()

    def take_over() -> None:
        while not fake.requests_for("scores/get_odl_scores"):
            time.sleep(0.005)
        with psycopg.connect(clean_db, autocommit=True, prepare_threshold=None) as conn:
            conn.execute("update game_platform_sync_runs set job_id = %s", (usurper,))

    thief = threading.Thread(target=take_over)
    thief.start()
    (job,) = drain_queue(db, settings)
    thief.join()
    assert job["id"] == job_id
    assert job["status"] == "succeeded"
    assert job["output"]["status"] == "superseded"
    assert count(sql, "select count(*) from game_platform_sync_state") == 0
    assert count(sql, "select count(*) from game_platform_challenge_solves") == 0
    assert run_start(sql)["job_id"] == usurper


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_budget_spent_before_the_first_call_hands_everyone_to_the_continuation(
    fake, db, sql, settings, roster, write_counter, dry_run
):
    payload = {"dryRun": dry_run, "coachId": None}
    job_id = enqueue(db, SYNC, payload)
    ctx = JobContext(
        job_id=job_id,
        task_type=SYNC,
        attempts=1,
        max_attempts=5,
        deadline=time.monotonic() + 0.2,  # less than the reserve kept for the last write
        db=db,
        queue=Queue(db),
        settings=settings,
    )
    JobFactory(sql).stage(job_id, "processing")
    out = TASK.handle(ctx, TASK.payload_model.model_validate(payload))
    assert out["status"] == "continued"
    assert out["competitors"]["total"] == 0
    assert fake.requests_for("scores/get_odl_scores") == []
    JobFactory(sql).stage(job_id, "succeeded")

    (continuation,) = drain_queue(db, settings)
    assert str(continuation["id"]) == out["continuationJobId"]
    assert continuation["output"]["status"] == "completed"
    assert continuation["output"]["competitors"]["total"] == len(fake.dataset.competitors())
    if not dry_run:
        assert set(write_counter().values()) == {1}
        assert len(write_counter()) == len(fake.dataset.competitors())
