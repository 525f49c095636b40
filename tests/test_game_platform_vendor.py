"""The Game Platform as the vendor really behaves (SPEC 5), through the real worker against the fake vendor.

One behaviour per test: per-user refusals (403), missing flash-CTF progress
(404), corrected and repeated solves, the item kept as received, the vendor's
last access, the payload options, roster removals and unapproved coaches, and
fields the vendor leaves out.
"""

from __future__ import annotations

import time

import pytest

from sandbox.game_platform import FakeGamePlatform, Fault, FlashCtfResult, demo_dataset, local_id
from tests.support.game_platform import count, drain_queue, enqueue, platform_settings, seed_roster, snapshot

SYNC = "game_platform_sync"
SWEEP = "game_platform_totals_sweep"
SYNC_DEFAULTS = {"dryRun": False, "coachId": None, "forceFullSync": False, "forceFlashCtfSync": False}
SWEEP_DEFAULTS = {"dryRun": False, "coachId": None, "batchSize": 100, "forceAll": False}


@pytest.fixture
def roster(sql, fake):
    return seed_roster(sql, fake.dataset)


def run(db, settings, task_type=SYNC, **options):
    defaults = SYNC_DEFAULTS if task_type == SYNC else SWEEP_DEFAULTS
    enqueue(db, task_type, {**defaults, **options})
    jobs = drain_queue(db, settings)
    assert jobs, "no job ran"
    return jobs[-1]


def state_of(sql, syned_user_id):
    return sql.execute("select * from game_platform_sync_state where syned_user_id = %s", (syned_user_id,)).fetchone()


def competitor_of(sql, syned_user_id):
    return sql.execute("select * from competitors where game_platform_id = %s", (syned_user_id,)).fetchone()


def solve_row(sql, syned_user_id, solve_id):
    return sql.execute(
        "select * from game_platform_challenge_solves where syned_user_id = %s and challenge_solve_id = %s",
        (syned_user_id, solve_id),
    ).fetchone()


def last_activity(sql, syned_user_id):
    row = sql.execute(
        "select extract(epoch from last_activity)::bigint as ts from game_platform_stats where competitor_id = %s",
        (local_id(syned_user_id),),
    ).fetchone()
    return row["ts"] if row else None


# -- 1. 403 on a user's ODL scores: not approved -----------------------------------------


def test_a_user_the_platform_has_not_approved_is_recorded_and_the_run_goes_on(fake, db, sql, settings, roster):
    users = fake.dataset.competitors()
    pending = users[2].syned_user_id
    fake.dataset.users[pending].status = "pending_approval"

    job = run(db, settings)
    assert job["status"] == "succeeded", job["last_error"]
    out = job["output"]
    assert out["status"] == "completed"
    assert out["competitors"]["notApproved"] == 1
    assert out["competitors"]["failed"] == out["competitors"]["skippedRemoteMissing"] == 0
    assert out["competitors"]["updated"] + out["competitors"]["unchanged"] == len(users) - 1
    assert [e["id"] for e in out["errors"] if e["kind"] == "competitor"] == [pending]

    state = state_of(sql, pending)
    assert state["last_result"] == "not_approved"
    assert "not approved" in state["error_message"]
    assert state["needs_totals_refresh"] is False
    assert state["last_synced_at"] is None
    competitor = competitor_of(sql, pending)
    assert "not approved on the Game Platform" in competitor["game_platform_sync_error"]
    assert competitor["game_platform_synced_at"] is None
    assert count(sql, "select count(*) from game_platform_sync_state where last_result = 'not_approved'") == 1


def test_once_approved_the_user_is_synced_and_its_error_cleared(fake, db, sql, settings, roster):
    pending = fake.dataset.competitors()[2].syned_user_id
    fake.dataset.users[pending].status = "denied"
    run(db, settings)
    fake.dataset.users[pending].status = "approved"
    run(db, settings)
    assert state_of(sql, pending)["last_result"] in ("updated", "unchanged")
    assert competitor_of(sql, pending)["game_platform_sync_error"] is None


def test_a_403_on_every_call_is_a_configuration_error_of_the_job(fake, db, sql, settings, roster):
    fake.inject(Fault(status=403, detail="Invalid API key"))
    job = run(db, settings)
    assert job["status"] == "pending", "the queue retries it once the token is fixed"
    assert "HTTP 403" in job["last_error"]
    assert "GAME_PLATFORM_API_TOKEN" in job["last_error"]
    assert count(sql, "select count(*) from game_platform_sync_state") == 0, "no user is blamed"
    assert count(sql, "select count(*) from competitors where game_platform_sync_error is not null") == 0


def test_a_small_scope_refused_to_the_last_user_is_a_configuration_error_too(db, sql, clean_db):
    dataset = demo_dataset(3, coaches=1, flash_ctfs=0)
    with FakeGamePlatform(dataset) as platform:
        seed_roster(sql, dataset, skip_teams=True)
        platform.inject(Fault(status=403, path="scores/get_odl_scores"))
        job = run(db, platform_settings(clean_db, platform))
    assert job["status"] == "pending"
    assert "all 3 users" in job["last_error"]
    assert count(sql, "select count(*) from game_platform_sync_state") == 0


def test_a_401_is_a_configuration_error_of_the_job(fake, db, sql, settings, roster):
    fake.inject(Fault(status=401, detail="Invalid authentication credentials"))
    job = run(db, settings)
    assert job["status"] == "pending"
    assert "GAME_PLATFORM_API_TOKEN" in job["last_error"]
    assert count(sql, "select count(*) from game_platform_sync_state") == 0


def test_the_sweep_reports_a_user_not_approved_and_goes_on(fake, db, sql, settings, roster):
    run(db, settings)
    users = fake.dataset.competitors()
    pending = users[0].syned_user_id
    fake.dataset.users[pending].status = "pending_approval"
    job = run(db, settings, SWEEP)
    assert job["status"] == "succeeded", job["last_error"]
    out = job["output"]
    assert (out["refreshed"], out["notApproved"], out["failed"]) == (len(users) - 1, 1, 0)
    (result,) = [r for r in out["results"] if r["synedUserId"] == pending]
    assert result["status"] == "not_approved"
    state = state_of(sql, pending)
    assert state["needs_totals_refresh"] is False, "the sync flags the user again once it can fetch them"
    assert "not approved" in state["totals_error"]


def test_a_sweep_refused_on_every_call_is_a_configuration_error(fake, db, sql, settings, roster):
    run(db, settings)
    fake.inject(Fault(status=403, detail="Invalid API key"))
    job = run(db, settings, SWEEP)
    assert job["status"] == "pending"
    assert "GAME_PLATFORM_API_TOKEN" in job["last_error"]
    assert count(sql, "select count(*) from game_platform_sync_state where needs_totals_refresh") == len(
        fake.dataset.competitors()
    ), "every flag stays for the retry"
    assert count(sql, "select count(*) from game_platform_sync_state where totals_error is not null") == 0


# -- 2. 404 on flash-CTF progress alone ------------------------------------------------------


def test_a_404_on_flash_ctf_progress_alone_keeps_the_odl_results(fake, db, sql, settings, roster):
    user = next(u for u in fake.dataset.competitors() if u.odl_solves and u.flash_ctfs)
    user.flash_progress = False
    job = run(db, settings)
    assert job["status"] == "succeeded"
    out = job["output"]["competitors"]
    assert out["skippedRemoteMissing"] == 0
    assert out["withoutFlashCtfProgress"] == 1
    assert [r.status for r in fake.requests_for("scores/get_flash_ctf_progress", user=user.syned_user_id)] == [404]
    uid = user.syned_user_id
    assert state_of(sql, uid)["last_result"] == "updated"
    assert state_of(sql, uid)["needs_totals_refresh"] is True
    assert competitor_of(sql, uid)["game_platform_sync_error"] is None
    assert count(sql, "select count(*) from game_platform_challenge_solves where syned_user_id = %s", (uid,)) == len(
        user.odl_solves
    )
    assert count(sql, "select count(*) from game_platform_flash_ctf_events where syned_user_id = %s", (uid,)) == 0


def test_the_sweep_writes_the_totals_of_a_user_without_flash_ctf_progress(fake, db, sql, settings, roster):
    run(db, settings)
    user = next(u for u in fake.dataset.competitors() if u.odl_solves and any(f.solves for f in u.flash_ctfs))
    user.flash_progress = False
    out = run(db, settings, SWEEP)["output"]
    assert out["failed"] == out["skippedRemoteMissing"] == 0
    row = sql.execute(
        "select * from game_platform_stats where competitor_id = %s", (local_id(user.syned_user_id),)
    ).fetchone()
    assert row["synced_at"] is not None
    assert row["challenges_completed"] == len(user.odl_solves)
    assert row["total_score"] == sum(s.points for s in user.odl_solves)
    assert row["monthly_ctf_challenges"] == 0
    assert state_of(sql, user.syned_user_id)["needs_totals_refresh"] is False


# -- 3. upserts, last seen wins; raw payloads; event ids ---------------------------------------


def test_a_solve_the_vendor_corrects_is_updated_in_place(fake, db, sql, settings, roster):
    run(db, settings)
    run(db, settings, SWEEP)
    user = next(u for u in fake.dataset.competitors() if u.odl_solves)
    uid, solve = user.syned_user_id, user.odl_solves[0]
    fake.change_solve(uid, solve.challenge_solve_id, title="Renamed", points=999, category="pwn", retired=True)

    job = run(db, settings, forceFullSync=True)
    out = job["output"]["competitors"]
    assert out["solvesChanged"] == 1
    assert out["newSolves"] == 0
    row = solve_row(sql, uid, solve.challenge_solve_id)
    assert (row["challenge_title"], row["challenge_points"], row["challenge_category"], row["challenge_retired"]) == (
        "Renamed",
        999,
        "pwn",
        True,
    )
    assert row["raw_payload"] == solve.to_json()
    assert count(sql, "select count(*) from game_platform_challenge_solves where syned_user_id = %s", (uid,)) == len(
        user.odl_solves
    ) + sum(len(f.solves) for f in user.flash_ctfs)
    assert state_of(sql, uid)["last_result"] == "updated"
    assert state_of(sql, uid)["needs_totals_refresh"] is True, "the totals may have changed with it"


def test_an_unchanged_solve_seen_again_changes_nothing(fake, db, sql, settings, roster):
    run(db, settings)
    before = snapshot(sql, ("game_platform_challenge_solves", "game_platform_flash_ctf_events"))
    out = run(db, settings, forceFullSync=True, forceFlashCtfSync=True)["output"]["competitors"]
    assert (out["newSolves"], out["solvesChanged"], out["flashCtfEventsChanged"]) == (0, 0, 0)
    assert out["updated"] == 0
    assert snapshot(sql, ("game_platform_challenge_solves", "game_platform_flash_ctf_events")) == before


def test_a_solve_listed_twice_in_one_answer_is_stored_once_the_last_one_winning(fake, db, sql, settings, roster):
    user = next(u for u in fake.dataset.competitors() if len(u.odl_solves) >= 2)
    uid = user.syned_user_id
    first, second = user.odl_solves[0], user.odl_solves[1]
    fake.repeat_solve(uid, first.challenge_solve_id, title="Second thoughts", points=5)
    fake.repeat_solve(uid, second.challenge_solve_id, category="crypto")
    fake.repeat_solve(uid, second.challenge_solve_id, category="forensics")
    job = run(db, settings)
    assert job["status"] == "succeeded", job["last_error"]
    assert job["output"]["competitors"]["failed"] == 0
    row = solve_row(sql, uid, first.challenge_solve_id)
    assert (row["challenge_title"], row["challenge_points"]) == ("Second thoughts", 5)
    assert row["raw_payload"]["challenge_title"] == "Second thoughts"
    assert solve_row(sql, uid, second.challenge_solve_id)["challenge_category"] == "forensics"
    assert (
        count(
            sql,
            "select count(*) from game_platform_challenge_solves where syned_user_id = %s and challenge_solve_id = %s",
            (uid, first.challenge_solve_id),
        )
        == 1
    )


def test_solves_and_events_keep_the_vendors_item_as_received(fake, db, sql, settings, roster):
    user = next(u for u in fake.dataset.competitors() if any(f.solves for f in u.flash_ctfs))
    uid = user.syned_user_id
    event = next(f for f in user.flash_ctfs if f.solves)
    event.max_points = 1500
    event.solves[0].nist_roles = ("Cyber Defense Analyst", "Vulnerability Assessment Analyst")
    run(db, settings)

    row = sql.execute(
        "select * from game_platform_flash_ctf_events where syned_user_id = %s and flash_ctf_name = %s",
        (uid, event.name),
    ).fetchone()
    assert row["event_id"] == f"{event.name}:{event.start_unix}"
    assert row["raw_payload"] == event.to_json()
    assert len(row["raw_payload"]["challenge_solves"]) == len(event.solves)
    assert row["max_points_possible"] == 1500
    assert row["ended_at"] is None, "the vendor sends no end time"
    solve = solve_row(sql, uid, event.solves[0].challenge_solve_id)
    assert solve["source"] == "flash_ctf"
    assert solve["flash_ctf_event_id"] == row["event_id"]
    assert solve["raw_payload"] == event.solves[0].to_json()
    assert solve["raw_payload"]["nist_nice_work_roles"] == ["Cyber Defense Analyst", "Vulnerability Assessment Analyst"]


def test_a_flash_ctf_result_the_vendor_changes_updates_its_event(fake, db, sql, settings, roster):
    run(db, settings)
    user = next(u for u in fake.dataset.competitors() if u.flash_ctfs)
    event = user.flash_ctfs[0]
    with fake.lock:
        event.rank = 1
        event.max_points = 2222
    out = run(db, settings, forceFlashCtfSync=True)["output"]
    assert out["flashCtfProgress"] == "all users"
    assert out["competitors"]["flashCtfEventsChanged"] == 1
    row = sql.execute(
        "select * from game_platform_flash_ctf_events where syned_user_id = %s and event_id = %s",
        (user.syned_user_id, f"{event.name}:{event.start_unix}"),
    ).fetchone()
    assert (row["rank"], row["max_points_possible"]) == (1, 2222)
    assert row["raw_payload"]["rank"] == 1


# -- 4. last_activity follows the vendor's last access ---------------------------------------------


def test_last_activity_follows_the_vendors_last_access_and_never_moves_back(fake, db, sql, settings, roster):
    user = fake.dataset.competitors()[0]
    uid = user.syned_user_id
    accessed = int(time.time()) - 60
    user.last_accessed_unix = accessed
    run(db, settings)
    assert last_activity(sql, uid) == accessed
    assert int(state_of(sql, uid)["last_remote_accessed_at"].timestamp()) == accessed

    user.last_accessed_unix = accessed - 86400  # the vendor reports an older access: ignored
    with fake.lock:
        user.odl_solves.clear()
        user.flash_ctfs.clear()
    run(db, settings, forceFullSync=True)
    assert last_activity(sql, uid) == accessed
    run(db, settings, SWEEP)
    assert last_activity(sql, uid) == accessed, "the sweep never moves it back either"


def test_without_a_last_access_last_activity_is_the_latest_solve(fake, db, sql, settings, roster):
    user = next(u for u in fake.dataset.competitors() if u.odl_solves)
    user.omit = frozenset({"last_accessed_unix_timestamp"})
    run(db, settings)
    stamps = [s.timestamp_unix for s in user.odl_solves] + [s.timestamp_unix for f in user.flash_ctfs for s in f.solves]
    assert last_activity(sql, user.syned_user_id) == max(stamps)


# -- 5. payload options -----------------------------------------------------------------------------


def test_force_full_sync_ignores_the_incremental_window(fake, db, sql, settings, roster):
    run(db, settings)
    fake.clear_requests()
    out = run(db, settings, forceFullSync=True)["output"]
    assert out["fullSync"] is True
    assert out["forceFullSync"] is True
    odl = fake.requests_for("scores/get_odl_scores")
    assert len(odl) == len(fake.dataset.competitors())
    assert all("after_time_unix" not in r.query for r in odl)
    # The forced run completes, so the next ordinary run is incremental again.
    fake.clear_requests()
    assert run(db, settings)["output"]["fullSync"] is False
    assert all("after_time_unix" in r.query for r in fake.requests_for("scores/get_odl_scores"))


def test_force_flash_ctf_sync_fetches_every_users_progress(fake, db, sql, settings, roster):
    run(db, settings)
    fake.clear_requests()
    out = run(db, settings)["output"]
    assert out["flashCtfProgress"] == "first-time users only"
    fake.clear_requests()
    out = run(db, settings, forceFlashCtfSync=True)["output"]
    assert out["flashCtfProgress"] == "all users"
    assert out["fullSync"] is False
    assert {r.user for r in fake.requests_for("scores/get_flash_ctf_progress")} == {
        u.syned_user_id for u in fake.dataset.competitors()
    }
    assert all("after_time_unix" in r.query for r in fake.requests_for("scores/get_odl_scores"))


def test_force_all_sweeps_every_linked_user_in_batches_with_continuations(fake, db, sql, settings, roster):
    run(db, settings)
    run(db, settings, SWEEP)
    users = fake.dataset.competitors()
    assert count(sql, "select count(*) from game_platform_sync_state where needs_totals_refresh") == 0
    fake.add_solve(users[0].syned_user_id, int(time.time()), points=77)
    sql.execute("update game_platform_stats set total_score = -1")

    fake.clear_requests()
    enqueue(db, SWEEP, {**SWEEP_DEFAULTS, "batchSize": 5, "forceAll": True})
    jobs = drain_queue(db, settings)
    assert [j["status"] for j in jobs] == ["succeeded"] * 3
    assert [j["output"]["status"] for j in jobs] == ["continued", "continued", "completed"]
    assert [j["output"]["batches"] for j in jobs] == [1, 2, 3]
    assert all(j["payload"]["forceAll"] is True for j in jobs)
    out = jobs[-1]["output"]
    assert (out["total"], out["refreshed"]) == (len(users), len(users))
    assert {r.user for r in fake.requests_for("scores/get_odl_scores")} == {u.syned_user_id for u in users}
    assert len(fake.requests_for("scores/get_odl_scores")) == len(users), "each user once"
    assert count(sql, "select count(*) from game_platform_stats where total_score = -1") == 0
    assert count(sql, "select count(*) from game_platform_sync_state where needs_totals_refresh") == 0


def test_force_all_in_a_dry_run_writes_nothing(fake, db, sql, settings, roster):
    run(db, settings)
    before = snapshot(sql)
    enqueue(db, SWEEP, {**SWEEP_DEFAULTS, "dryRun": True, "batchSize": 5, "forceAll": True})
    jobs = drain_queue(db, settings)
    assert jobs[-1]["output"]["total"] == len(fake.dataset.competitors())
    assert snapshot(sql) == before


@pytest.mark.parametrize(
    ("task_type", "payload"),
    [
        (SYNC, {"forceFullSync": "yes"}),
        (SYNC, {"forceFlashCtfSync": 1}),
        (SYNC, {"forceAll": True}),
        (SWEEP, {"forceAll": None}),
        (SWEEP, {"forceFullSync": True}),
    ],
)
def test_an_invalid_option_fails_the_job_for_good(fake, db, settings, task_type, payload):
    enqueue(db, task_type, payload)
    (job,) = drain_queue(db, settings)
    assert job["status"] == "failed"
    assert job["last_error"].startswith(f"invalid payload for {task_type}")
    assert fake.requests == []


# -- 6. rosters ------------------------------------------------------------------------------------


def test_members_the_local_team_no_longer_has_are_removed_on_the_platform(fake, db, sql, settings, roster):
    team = next(iter(fake.dataset.teams.values()))
    listed = [u for u, t in fake.dataset.assignments.items() if t == team.syned_team_id]
    leaver = listed[0]
    sql.execute(
        "delete from team_members where team_id = %s and competitor_id = %s",
        (local_id(team.syned_team_id), local_id(leaver)),
    )
    stranger = next(u.syned_user_id for u in fake.dataset.competitors() if u.syned_user_id not in team.members)
    sql.execute("delete from team_members where competitor_id = %s", (local_id(stranger),))
    fake.dataset.assign(stranger, team.syned_team_id)  # listed by the platform, on no local team at all

    job = run(db, settings)
    assert job["status"] == "succeeded", job["last_error"]
    removed = sorted(r.body["syned_user_id"] for r in fake.requests_for("users/delete_assignment"))
    assert removed == sorted([leaver, stranger])
    assert leaver not in fake.dataset.assignments
    assert stranger not in fake.dataset.assignments
    assert job["output"]["teams"]["membersRemoved"] == 2
    assert job["output"]["teams"]["failed"] == 0

    fake.clear_requests()
    out = run(db, settings)["output"]["teams"]
    assert out["membersRemoved"] == 0
    assert fake.requests_for("users/delete_assignment") == []
    assert fake.requests_for("users/assign_team") == [], "members already listed are not assigned again"


def test_a_member_who_moved_to_another_of_our_teams_is_moved_not_removed(fake, db, sql, settings, roster):
    source, target = sorted(fake.dataset.teams.values(), key=lambda t: t.syned_team_id)[:2]
    mover = next(u for u, t in fake.dataset.assignments.items() if t == source.syned_team_id)
    sql.execute(
        "update team_members set team_id = %s where competitor_id = %s",
        (local_id(target.syned_team_id), local_id(mover)),
    )
    job = run(db, settings)
    assert job["status"] == "succeeded", job["last_error"]
    assert mover not in {r.body["syned_user_id"] for r in fake.requests_for("users/delete_assignment")}
    assert fake.dataset.assignments[mover] == target.syned_team_id


def test_a_team_whose_coach_is_not_an_approved_coach_is_skipped_with_an_error(fake, db, sql, settings, roster):
    coach = "syned-coach-01"
    sql.execute("update profiles set is_approved = false where id = %s", (local_id(coach),))
    teams = {t.syned_team_id for t in fake.dataset.teams.values() if t.coach_syned_user_id == coach}
    other = next(t for t in fake.dataset.teams.values() if t.coach_syned_user_id != coach)
    sql.execute(
        "update profiles set role = 'admin' where id = %s", (local_id(other.coach_syned_user_id),)
    )  # an admin is not a coach

    job = run(db, settings)
    assert job["status"] == "succeeded"
    out = job["output"]["teams"]
    assert out["skippedCoachNotApproved"] == len(fake.dataset.teams)
    assert fake.requests_for("users/get_team_assignments") == []
    assert fake.requests_for("users/assign_team") == []
    for team_id in teams | {other.syned_team_id}:
        row = sql.execute("select * from teams where game_platform_id = %s", (team_id,)).fetchone()
        assert "not an approved coach" in row["game_platform_sync_error"]
        assert row["game_platform_synced_at"] is None

    # Approved again: synced, the error cleared.
    sql.execute("update profiles set is_approved = true, role = 'coach'")
    out = run(db, settings)["output"]["teams"]
    assert out["skippedCoachNotApproved"] == 0
    assert out["synced"] == len(fake.dataset.teams)
    assert count(sql, "select count(*) from teams where game_platform_sync_error is not null") == 0


# -- 7. fields the vendor leaves out -------------------------------------------------------------------


def test_fields_the_vendor_leaves_out_never_fail_a_user(fake, db, sql, settings, roster):
    users = fake.dataset.competitors()
    users[0].omit = frozenset({"challenge_solves"})
    users[1].omit = frozenset({"max_points_possible", "rank", "points_earned", "challenges_solved"})
    users[2].omit = frozenset({"last_accessed_unix_timestamp", "category_points", "metactf_user_id", "syned_user_id"})
    users[3].omit = frozenset({"challenge_title", "challenge_category", "challenge_retired", "nist_nice_work_roles"})
    users[4].omit = frozenset({"flash_ctfs"})
    job = run(db, settings)
    assert job["status"] == "succeeded", job["last_error"]
    out = job["output"]["competitors"]
    assert out["failed"] == 0, job["output"]["errors"]
    assert out["updated"] + out["unchanged"] == len(users)
    sweep = run(db, settings, SWEEP)["output"]
    assert (sweep["refreshed"], sweep["failed"]) == (len(users), 0), sweep["results"]
    row = sql.execute(
        "select * from game_platform_stats where competitor_id = %s", (local_id(users[1].syned_user_id),)
    ).fetchone()
    assert row["monthly_ctf_challenges"] == sum(len(f.solves) for f in users[1].flash_ctfs)


# -- dry run ------------------------------------------------------------------------------------------------


def test_a_dry_run_reports_the_vendors_behaviour_and_writes_nothing(fake, db, sql, settings, roster):
    run(db, settings)
    users = fake.dataset.competitors()
    fake.dataset.users[users[0].syned_user_id].status = "pending_approval"
    changed = next(u for u in users[1:] if u.odl_solves)
    fake.change_solve(changed.syned_user_id, changed.odl_solves[0].challenge_solve_id, title="Fixed")
    team = next(iter(fake.dataset.teams.values()))
    leaver = next(u for u, t in fake.dataset.assignments.items() if t == team.syned_team_id)
    sql.execute("delete from team_members where competitor_id = %s", (local_id(leaver),))
    fake.add_flash_ctf(users[-1].syned_user_id, FlashCtfResult("Flash CTF: Dry", int(time.time()) - 300))
    fake.clear_requests()
    before = snapshot(sql)

    out = run(db, settings, dryRun=True, forceFullSync=True, forceFlashCtfSync=True)["output"]
    assert snapshot(sql) == before
    assert out["competitors"]["notApproved"] == 1
    assert out["competitors"]["solvesChanged"] == 1
    assert out["competitors"]["flashCtfEventsChanged"] == 1
    assert out["teams"]["membersRemoved"] == 1
    assert fake.requests_for("users/delete_assignment") == []
    assert fake.requests_for("users/assign_team") == []
