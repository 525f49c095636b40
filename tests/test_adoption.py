"""Adopting the original app's database: both of its shapes migrate, keep their rows, and run.

The fixtures (tests/fixtures/origin/) are the original app's schema and a
handful of rows in every table, written from reference/origin-schema.md: the
seed era (01, 02) and the current shape (01, 02, then the app's later
migrations 03 and rows 04). Each test builds its own database from them on the
run's PostgreSQL, migrates it with scripts/migrate.py's code and checks it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from lib.db import close_kept_connections, connect
from lib.game_platform.payloads import SweepRequest, SyncRequest
from sandbox.game_platform import Dataset, FakeGamePlatform, FakeTeam, FakeUser, FlashCtfResult, Solve
from scripts.local_pg import create_database, drop_database
from scripts.migrate import MIGRATIONS_DIR, apply_migrations, discover, ensure_supabase_compatibility
from tests.support.api import ROOT
from tests.support.game_platform import drain_queue, enqueue, platform_settings

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "origin"
ERAS = {
    "seed": ["01_seed_schema.sql", "02_seed_rows.sql"],
    "head": ["01_seed_schema.sql", "02_seed_rows.sql", "03_head_changes.sql", "04_head_rows.sql"],
}
ADOPTION = MIGRATIONS_DIR / "20261128000050_adopt_original_app.sql"
ADOPTION_FILES = (ADOPTION, MIGRATIONS_DIR / "20261201000900_adopt_recurring_jobs.sql")
SCHEDULES_MIGRATION = MIGRATIONS_DIR / "20261128000200_job_queue_schedules.sql"
BOTH_ERAS = ["seed", "head"]

RUNNING_JOB = "60000000-0000-4000-8000-000000000002"
PENDING_SYNC_JOB = "60000000-0000-4000-8000-000000000001"
COMPETITOR_1 = "10000000-0000-4000-8000-000000000001"
COMPETITOR_3 = "10000000-0000-4000-8000-000000000003"

# How each original table's rows are found again after adoption: its key columns.
ORIGIN_KEYS = {
    "profiles": ("id",),
    "competitors": ("id",),
    "teams": ("id",),
    "team_members": ("id",),
    "game_platform_stats": ("id",),
    "game_platform_sync_state": ("syned_user_id|synced_user_id",),
    "game_platform_challenge_solves": ("id",),
    "game_platform_flash_ctf_events": ("id",),
    "game_platform_sync_runs": ("id",),
    "job_queue": ("id",),
    "job_queue_settings": ("id",),
    "job_worker_runs": ("id",),
    "game_platform_stats_raw_data_backup": ("competitor_id",),
}
# After adoption the original key of a table may live under another name.
ADOPTED_KEYS = {"game_platform_sync_runs": ("original_id",), "job_queue_settings": ("id",)}


# -- building and reading databases -----------------------------------------------------


@pytest.fixture(scope="module")
def admin_conninfo(admin_conninfo: str) -> str:
    """The server itself, never a pooler: adoption is a migration, run on a direct connection.

    docs/adoption.md migrates, dumps and restores over the direct connection string, as
    pg_dump, pg_restore and session-level settings need; CI's pooled pass sets
    DIRECT_DATABASE_URL to the PostgreSQL behind PgBouncer.
    """
    return os.environ.get("DIRECT_DATABASE_URL", "").strip() or admin_conninfo


def build_origin(admin_conninfo: str, era: str, tweak: str | None = None) -> str:
    """A new database shaped like the original app's `era`, with its rows (and `tweak` SQL run last)."""
    conninfo = create_database(admin_conninfo, prefix=f"jq_origin_{era}")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        ensure_supabase_compatibility(conn)  # Supabase's roles and schemas, as on a real project
        for name in ERAS[era]:
            conn.execute((FIXTURES / name).read_bytes())
        if tweak:
            conn.execute(tweak.encode())
    return conninfo


@pytest.fixture
def origin(admin_conninfo: str) -> Iterator[Callable[..., str]]:
    """`origin("seed")` / `origin("head", tweak=sql)`: build an original-app database, dropped afterwards."""
    built: list[str] = []

    def make(era: str, tweak: str | None = None) -> str:
        conninfo = build_origin(admin_conninfo, era, tweak)
        built.append(conninfo)
        return conninfo

    yield make
    close_kept_connections()
    for conninfo in built:
        drop_database(admin_conninfo, conninfo)


def rows_by_key(conninfo: str, keys: dict[str, tuple[str, ...]]) -> dict[str, dict[tuple[Any, ...], dict[str, Any]]]:
    """Every row of the named tables (those that exist), keyed by their key columns."""
    out: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
    with psycopg.connect(conninfo, row_factory=dict_row) as conn:
        for table, key in keys.items():
            if conn.execute("select to_regclass(%s) as t", (f"public.{table}",)).fetchone()["t"] is None:
                continue
            rows = conn.execute(f"select * from public.{table}").fetchall()
            out[table] = {tuple(_pick(r, k) for k in key): r for r in rows}
    return out


def _pick(row: dict[str, Any], names: str) -> Any:
    """The value of the first of `a|b` that the row has (a column the app renamed between eras)."""
    return next(row[n] for n in names.split("|") if n in row)


SCHEMA_QUERIES = {
    "columns": """
        select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity,
               a.attgenerated, pg_get_expr(d.adbin, d.adrelid)
          from pg_attribute a join pg_class c on c.oid = a.attrelid
          left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
         where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'v') and a.attnum > 0
           and not a.attisdropped""",
    "constraints": """
        select conrelid::regclass::text, conname, pg_get_constraintdef(oid), convalidated
          from pg_constraint where connamespace = 'public'::regnamespace""",
    "indexes": "select tablename, indexname, indexdef from pg_indexes where schemaname = 'public'",
    "triggers": """
        select tgrelid::regclass::text, tgname, tgenabled from pg_trigger
         where not tgisinternal and tgrelid::regclass::text not like 'pg\\_%'""",
    "policies": "select tablename, policyname, cmd, qual, with_check from pg_policies where schemaname = 'public'",
    "functions": """
        select p.oid::regprocedure::text, md5(p.prosrc), p.proacl::text from pg_proc p
         where p.pronamespace = 'public'::regnamespace""",
    "privileges": """
        select relname, relacl::text, relrowsecurity from pg_class
         where relnamespace = 'public'::regnamespace and relkind in ('r', 'v', 'S')""",
    "migrations": "select version from supabase_migrations.schema_migrations",
}


def dump(conninfo: str) -> dict[str, Any]:
    """The schema of `public` and every row of every table in it, comparable with ==."""
    with psycopg.connect(conninfo) as conn:
        state: dict[str, Any] = {
            name: sorted(tuple(map(str, r)) for r in conn.execute(query).fetchall())
            for name, query in SCHEMA_QUERIES.items()
        }
        tables = [r[0] for r in conn.execute("select tablename from pg_tables where schemaname = 'public'")]
        for table in sorted(tables):
            state[f"rows:{table}"] = sorted(r[0] for r in conn.execute(f"select t::text from public.{table} t"))
    return state


def migrate(conninfo: str) -> None:
    assert apply_migrations(conninfo), "nothing was applied"


def fetch(conninfo: str, query: str, params: Any = None) -> list[dict[str, Any]]:
    with psycopg.connect(conninfo, autocommit=True, row_factory=dict_row) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


# -- 1. every row survives with its values ------------------------------------------------


# The values adoption changes on purpose (docs/adoption.md), per table and key.
def expected_changes(era: str) -> dict[str, dict[tuple[Any, ...], dict[str, Any]]]:
    from uuid import UUID

    changes: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {
        "job_queue": {(UUID(RUNNING_JOB),): {"status": "processing"}},
        "job_queue_settings": {(1,): {"id": True}},
        "game_platform_stats": {
            # the kept row of competitor 1's pair takes the group's earliest created_at
            (UUID("40000000-0000-4000-8000-000000000002"),): {"created_at": datetime(2025, 9, 1, tzinfo=UTC)},
            # competitor 3's pair: same synced_at, the later update wins and keeps the latest activity
            (UUID("40000000-0000-4000-8000-000000000005"),): {
                "last_activity": datetime(2025, 10, 3, tzinfo=UTC),
                "created_at": datetime(2025, 9, 3, tzinfo=UTC),
            },
            (UUID("40000000-0000-4000-8000-000000000003"),): {"monthly_ctf_challenges": 0},
        },
        "game_platform_sync_state": {("syned-user-0003",): {"needs_totals_refresh": False}},
        "game_platform_flash_ctf_events": {(2,): {"challenges_solved": 0, "points_earned": 0}},
    }
    if era == "head":
        for job in ("61000000-0000-4000-8000-000000000011", "61000000-0000-4000-8000-000000000012"):
            changes["job_queue"][(UUID(job),)] = {"completed_at": "=updated_at"}
        # Recurring jobs that became schedules, and the expired one, are kept cancelled.
        for job in (*RECURRING_CONVERTED, RECURRING_EXPIRED):
            changes["job_queue"][(UUID(job),)] = {
                "status": "cancelled",
                "completed_at": ANY,
                "updated_at": ANY,
                "last_error": ANY,
            }
    return changes


ANY = object()  # a value adoption sets (checked by its own test)
RECURRING_CONVERTED = ("61000000-0000-4000-8000-000000000001", "61000000-0000-4000-8000-000000000002")
RECURRING_EXPIRED = "61000000-0000-4000-8000-000000000006"
RECURRING_KEPT = {
    "61000000-0000-4000-8000-000000000003": "the bundle has no task game_platform_flash_ctf_sync",
    "61000000-0000-4000-8000-000000000004": "the bundle has no task admin_alert_dispatch",
    "61000000-0000-4000-8000-000000000005": "every 45 minutes has no five-field cron equivalent",
}


MERGED_AWAY = {"40000000-0000-4000-8000-000000000001", "40000000-0000-4000-8000-000000000004"}


@pytest.mark.parametrize("era", BOTH_ERAS)
def test_every_row_survives_with_its_values(origin, era):
    conninfo = origin(era)
    before = rows_by_key(conninfo, ORIGIN_KEYS)
    migrate(conninfo)
    after = rows_by_key(conninfo, {**ORIGIN_KEYS, **ADOPTED_KEYS})
    changes = expected_changes(era)
    assert set(before) <= set(after)
    for table, rows in before.items():
        for key, row in rows.items():
            if table == "game_platform_stats" and str(key[0]) in MERGED_AWAY:
                assert key not in after[table], f"{table} {key} should have been merged"
                continue
            adopted_key = (True,) if table == "job_queue_settings" else key
            assert adopted_key in after[table], f"{table} {key} is gone"
            adopted = after[table][adopted_key]
            want = dict(row)
            for column, value in changes.get(table, {}).get(key, {}).items():
                want[column] = row[value[1:]] if isinstance(value, str) and value.startswith("=") else value
            if table == "game_platform_sync_runs":
                want["original_id"] = want.pop("id")
            want = {column: value for column, value in want.items() if value is not ANY}
            got = {column: adopted[column] for column in want}
            assert got == want, f"{table} {key}"
        if table != "game_platform_stats":
            assert len(after[table]) == len(rows), f"{table}: rows added or lost"


@pytest.mark.parametrize("era", BOTH_ERAS)
def test_duplicate_stats_rows_are_merged_and_kept_aside(origin, era):
    conninfo = origin(era)
    migrate(conninfo)
    stats = fetch(conninfo, "select competitor_id::text, id::text, challenges_completed from game_platform_stats")
    assert sorted((r["competitor_id"][-1], r["id"][-1], r["challenges_completed"]) for r in stats) == [
        ("1", "2", 5),  # the later synced_at wins
        ("2", "3", 1),
        ("3", "5", 4),  # same synced_at: the later updated_at wins
    ]
    aside = fetch(conninfo, "select id::text, merged_into::text from game_platform_stats_merged_duplicates")
    assert {r["id"]: r["merged_into"][-1] for r in aside} == {
        "40000000-0000-4000-8000-000000000001": "2",
        "40000000-0000-4000-8000-000000000004": "5",
    }
    with pytest.raises(psycopg.errors.UniqueViolation):
        fetch(conninfo, "insert into game_platform_stats (competitor_id) values (%s)", (COMPETITOR_1,))


@pytest.mark.parametrize("era", BOTH_ERAS)
def test_the_pause_switch_and_its_reason_survive(origin, era):
    conninfo = origin(era)
    migrate(conninfo)
    (row,) = fetch(conninfo, "select * from job_queue_settings")
    assert row["id"] is True
    assert row["processing_enabled"] is False
    assert row["paused_reason"] == "Paused for the season break (admin)"
    assert row["updated_at"] == datetime(2025, 10, 5, 12, 30, tzinfo=UTC)
    (resumed,) = fetch(conninfo, "select * from job_queue_set_processing(true)")
    assert resumed["processing_enabled"] is True


# -- 2. the running job is recovered -------------------------------------------------------


@pytest.mark.parametrize("era", BOTH_ERAS)
def test_a_running_job_is_recovered_by_the_next_claim(origin, era):
    conninfo = origin(era)
    migrate(conninfo)
    (job,) = fetch(conninfo, "select * from job_queue where id = %s", (RUNNING_JOB,))
    assert job["status"] == "processing"
    assert job["lease_expires_at"] <= datetime.now(UTC)
    claimed = fetch(conninfo, "select * from job_queue_claim(1)")
    assert [str(c["id"]) for c in claimed] == [RUNNING_JOB], "an expired lease is taken over first"
    (taken,) = claimed
    assert taken["attempts"] == job["attempts"] + 1
    assert taken["lease_token"] is not None
    assert taken["lease_expires_at"] > datetime.now(UTC)
    assert "reclaimed" in taken["last_error"]


# -- 3. the worker and both handlers run on the adopted data -------------------------------

ADOPTION_USERS = ("syned-user-0001", "syned-user-0002", "syned-user-0003", "syned-user-0004")


def adoption_dataset() -> Dataset:
    """The fake vendor's view of the fixture's competitors (same platform ids, some new activity)."""
    now = int(datetime.now(UTC).timestamp())
    data = Dataset()
    for coach in ("syned-coach-01", "syned-coach-02"):
        data.add_user(FakeUser(coach, role="coach"))
    u1 = data.add_user(FakeUser("syned-user-0001", coach_syned_user_id="syned-coach-01"))
    # The two solves the original app stored (same ids), and a new one.
    u1.odl_solves += [Solve(90001, 501, 1757462400, 100), Solve(90002, 502, 1758326400, 200, "crypto")]
    u1.odl_solves.append(data.solve(now - 600, points=300))
    u1.flash_ctfs.append(FlashCtfResult("Flash CTF: Cipher Sprint", 1757894400, [Solve(90003, 503, 1757896200)]))
    u2 = data.add_user(FakeUser("syned-user-0002", coach_syned_user_id="syned-coach-01"))
    u2.odl_solves.append(Solve(90004, 501, 1754006400, 100))
    u3 = data.add_user(FakeUser("syned-user-0003", coach_syned_user_id="syned-coach-02"))
    u3.odl_solves += [data.solve(now - 900, points=50), data.solve(now - 800, points=150)]
    data.add_user(FakeUser("syned-user-0004", coach_syned_user_id="syned-coach-02"))
    team = data.add_team(FakeTeam("syned-team-001", name="North Stars", coach_syned_user_id="syned-coach-01"))
    team.members = ["syned-user-0001", "syned-user-0002"]
    data.assign("syned-user-0001", "syned-team-001")
    return data


@pytest.mark.parametrize("era", BOTH_ERAS)
def test_the_worker_and_both_handlers_run_on_the_adopted_data(origin, era, serve, monkeypatch):
    from lib.settings import reload_settings
    from tests.support.secrets import CRON_SECRET, RUNNER_SECRET, cron_headers

    conninfo = origin(era)
    migrate(conninfo)
    with FakeGamePlatform(adoption_dataset()) as fake:
        # The endpoint first: the adopted pause switch holds the queue.
        for name, value in {
            "DATABASE_URL": conninfo,
            "CRON_SECRET": CRON_SECRET,
            "JOB_QUEUE_RUNNER_SECRET": RUNNER_SECRET,
            "GAME_PLATFORM_API_BASE_URL": fake.base_url,
            "GAME_PLATFORM_API_TOKEN": fake.token,
        }.items():
            monkeypatch.setenv(name, value)
        reload_settings()
        worker = serve("api/jobs/run.py")
        response = worker.request("GET", headers=cron_headers())
        assert response.status == 200, response.json
        assert response.json["status"] == "paused"
        assert fetch(conninfo, "select status from job_queue where id = %s", (PENDING_SYNC_JOB,))[0]["status"] == (
            "pending"
        )

        fetch(conninfo, "select * from job_queue_set_processing(true)")
        settings = platform_settings(conninfo, fake, GAME_PLATFORM_RETRY_BASE_SECONDS="0.05")
        with connect(settings) as db:
            finished = {str(j["id"]): j for j in drain_queue(db, settings)}
            # The recovered sweep and the adopted sync both ran, and succeeded.
            for job_id in (RUNNING_JOB, PENDING_SYNC_JOB):
                assert finished[job_id]["status"] == "succeeded", finished[job_id]["last_error"]
            sync = finished[PENDING_SYNC_JOB]["output"]
            assert sync["fullSync"] is False, "the original's completed runs make the first sync incremental"
            assert sync["competitors"]["total"] == len(ADOPTION_USERS)
            assert sync["competitors"]["failed"] == 0
            # The new solves were stored beside the original ones, once.
            solves = fetch(conninfo, "select syned_user_id, challenge_solve_id from game_platform_challenge_solves")
            assert sum(1 for s in solves if s["syned_user_id"] == "syned-user-0001") == 4
            assert sum(1 for s in solves if s["syned_user_id"] == "syned-user-0003") == 2
            # Then a sweep refreshes everyone the sync flagged, over the merged stats rows.
            enqueue(db, "game_platform_totals_sweep", {"dryRun": False, "coachId": None, "batchSize": 100})
            (sweep,) = [j for j in drain_queue(db, settings) if j["task_type"] == "game_platform_totals_sweep"]
            assert sweep["status"] == "succeeded", sweep["last_error"]
            assert sweep["output"]["failed"] == 0
        stats = {
            str(r["competitor_id"]): r
            for r in fetch(conninfo, "select competitor_id, challenges_completed, total_score from game_platform_stats")
        }
        assert (stats[COMPETITOR_1]["challenges_completed"], stats[COMPETITOR_1]["total_score"]) == (3, 600)
        assert (stats[COMPETITOR_3]["challenges_completed"], stats[COMPETITOR_3]["total_score"]) == (2, 200)
        assert (
            fetch(conninfo, "select count(*) as n from game_platform_sync_state where needs_totals_refresh")[0]["n"]
            == 0
        )
        states = fetch(conninfo, "select syned_user_id, last_result from game_platform_sync_state order by 1")
        assert {s["syned_user_id"] for s in states} == set(ADOPTION_USERS)
        assert {s["last_result"] for s in states} <= {"updated", "unchanged"}
        runs = fetch(
            conninfo,
            "select status from job_queue_invocations where started_at > now() - interval '1 hour' order by id",
        )
        assert runs[0]["status"] == "paused", "the endpoint's run, held by the adopted pause switch"
        assert {r["status"] for r in runs[1:]} == {"completed"}
    reload_settings_safely()


def reload_settings_safely() -> None:
    import contextlib

    from lib.settings import reload_settings

    with contextlib.suppress(Exception):
        reload_settings()


@pytest.mark.parametrize("era", BOTH_ERAS)
def test_solves_get_their_roles_and_event_from_the_vendor_items_the_app_kept(origin, era):
    conninfo = origin(era)
    migrate(conninfo)
    solves = {
        s["challenge_solve_id"]: s
        for s in fetch(conninfo, "select * from game_platform_challenge_solves where syned_user_id = 'syned-user-0001'")
    }
    assert (solves[90001]["nist_nice_work_roles"], solves[90001]["challenge_retired"]) == (["PR-CDA-001"], False)
    assert (solves[90002]["nist_nice_work_roles"], solves[90002]["challenge_retired"]) == ([], None)
    assert solves[90003]["flash_ctf_event_id"] == "Flash CTF: Cipher Sprint:1757894400"
    assert solves[90001]["flash_ctf_event_id"] is None


def test_the_original_apps_dashboard_still_reads_the_solves(origin):
    conninfo = origin("head")
    before = fetch(conninfo, "select * from get_dashboard_category_totals(array['syned-user-0001']) order by 2")
    migrate(conninfo)
    after = fetch(conninfo, "select * from get_dashboard_category_totals(array['syned-user-0001']) order by 2")
    assert after == before
    assert before
    # New rows written under the bundle's name are visible under the app's.
    fetch(
        conninfo,
        "insert into game_platform_challenge_solves (syned_user_id, challenge_solve_id, challenge_category,"
        " challenge_points) values ('syned-user-0001', 99999, 'web', 50)",
    )
    web = fetch(
        conninfo,
        "select * from get_dashboard_category_totals(array['syned-user-0001']) where challenge_category = 'web'",
    )
    assert web[0]["solves"] == 2
    assert web[0]["points"] == 150


def test_recurring_jobs_become_schedules_where_they_map(origin):
    conninfo = origin("head")
    migrate(conninfo)
    schedules = {s["name"]: s for s in fetch(conninfo, "select * from job_queue_schedules")}
    assert set(schedules) == {"game_platform_sync", "game_platform_totals_sweep", "job_queue_cleanup"}
    sync, sweep = schedules["game_platform_sync"], schedules["game_platform_totals_sweep"]
    # The app ran both every 15 minutes: its recurring jobs replace the seeded cadence and payloads.
    # Stored as the triggers store them, every key with its default, so they deduplicate alike.
    assert sync["cron"] == "*/15 * * * *"
    assert sync["payload"] == SyncRequest().to_payload()
    assert sweep["cron"] == "*/15 * * * *"
    assert sweep["payload"] == SweepRequest(batchSize=50).to_payload()
    for schedule in (sync, sweep):
        assert schedule["enabled"]
        assert datetime.now(UTC) < schedule["next_run_at"] <= datetime.now(UTC) + timedelta(minutes=15)
    assert schedules["job_queue_cleanup"]["cron"] == "17 3 * * *", "a schedule the app had no job for is left alone"

    jobs = {str(j["id"]): j for j in fetch(conninfo, "select * from job_queue where is_recurring")}
    for job_id, name in zip(RECURRING_CONVERTED, ("game_platform_sync", "game_platform_totals_sweep"), strict=True):
        job = jobs[job_id]
        assert job["status"] == "cancelled"
        assert job["completed_at"] is not None
        assert job["last_error"] == f"adopted: replaced by the schedule {name} (*/15 * * * *, UTC)"
        assert job["lease_token"] is None
        assert job["lease_expires_at"] is None
    assert jobs[RECURRING_EXPIRED]["status"] == "cancelled"
    assert "expired" in jobs[RECURRING_EXPIRED]["last_error"]
    for job_id in RECURRING_KEPT:
        assert jobs[job_id]["status"] == "pending"
        assert jobs[job_id]["last_error"] is None


def test_the_cli_says_which_recurring_jobs_stay_plain_jobs(origin):
    conninfo = origin("head")
    env = {**os.environ, "DATABASE_URL": conninfo}
    result = subprocess.run([sys.executable, "scripts/migrate.py"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for job_id, why in RECURRING_KEPT.items():
        (line,) = [line for line in result.stdout.splitlines() if job_id in line]
        assert "kept as a plain job, not a schedule" in line
        assert why in line
    assert "adopt job_queue: 2 recurring job(s) became schedules, 3 kept as plain jobs, 1 expired ones cancelled" in (
        result.stdout
    )
    assert "adopt job_worker_runs: 4 run(s) copied into job_queue_invocations" in result.stdout


def test_the_worker_run_history_is_carried_over(origin):
    conninfo = origin("head")
    originals = fetch(conninfo, "select * from job_worker_runs order by started_at")
    migrate(conninfo)
    runs = fetch(conninfo, "select * from job_queue_invocations order by id")
    assert [(r["trigger_source"], r["status"], r["started_at"], r["finished_at"]) for r in runs] == [
        ("vercel_cron_secret", "completed", originals[0]["started_at"], originals[0]["completed_at"]),
        ("admin_manual", "paused", originals[1]["started_at"], originals[1]["completed_at"]),
        ("vercel_cron_user_agent", "failed", originals[2]["started_at"], originals[2]["completed_at"]),
        ("unknown", "failed", originals[3]["started_at"], None),
    ]
    assert [(r["processed"], r["succeeded"], r["failed"]) for r in runs] == [(2, 2, 0), (0, 0, 0), (1, 0, 1), (0, 0, 0)]
    assert runs[0]["duration_ms"] == 20_000
    assert runs[2]["error"] == "claim failed: connection reset"
    assert runs[3]["error"].startswith("interrupted")
    assert fetch(conninfo, "select * from job_worker_runs order by started_at") == originals
    # The health report reads them as the bundle's own history.
    (health,) = fetch(
        conninfo, "select last_run_at, jsonb_array_length(recent_runs) as n from job_queue_health_snapshot()"
    )
    assert (health["last_run_at"], health["n"]) == (originals[3]["started_at"], 4)


# -- 4. a second migrate changes nothing -----------------------------------------------------


@pytest.mark.parametrize("era", BOTH_ERAS)
def test_migrating_again_changes_nothing(origin, era):
    conninfo = origin(era)
    migrate(conninfo)
    first = dump(conninfo)
    assert apply_migrations(conninfo) == []
    assert dump(conninfo) == first
    # Even run by hand, outside the bookkeeping, the adoption finds nothing to convert.
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for adoption in ADOPTION_FILES:
            conn.execute(adoption.read_bytes())
    assert dump(conninfo) == first


def test_on_a_fresh_database_adoption_changes_nothing(origin, admin_conninfo):
    conninfo = create_database(admin_conninfo, prefix="jq_adopt_fresh")
    try:
        apply_migrations(conninfo)
        before = dump(conninfo)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            for adoption in ADOPTION_FILES:
                conn.execute(adoption.read_bytes())
        assert dump(conninfo) == before
    finally:
        drop_database(admin_conninfo, conninfo)


# -- 5. the adopted shape is ours ----------------------------------------------------------------


@pytest.fixture(scope="module")
def fresh_schema(admin_conninfo: str) -> Iterator[dict[str, Any]]:
    conninfo = create_database(admin_conninfo, prefix="jq_adopt_ref")
    try:
        apply_migrations(conninfo)
        yield dump(conninfo)
    finally:
        drop_database(admin_conninfo, conninfo)


# The app's roster tables keep their own nullability and defaults (the bundle
# only reads them and writes its sync columns): there, types must match.
ROSTER = {"profiles", "competitors", "teams", "team_members"}
# Where an adopted table of the bundle's knowingly differs from a fresh one (docs/adoption.md).
KNOWN_DIFFERENCES = {
    # the app's identity kind (by default, not always) is kept
    ("game_platform_challenge_solves", "id"),
    ("game_platform_flash_ctf_events", "id"),
}


@pytest.mark.parametrize("era", BOTH_ERAS)
def test_the_adopted_tables_have_our_columns_constraints_and_indexes(origin, era, fresh_schema):
    conninfo = origin(era)
    migrate(conninfo)
    adopted = dump(conninfo)
    ours = {(c[0], c[1]): c for c in fresh_schema["columns"]}
    theirs = {(c[0], c[1]): c for c in adopted["columns"]}
    differences = []
    for key, column in ours.items():
        if key not in theirs:
            differences.append(("missing", key))
        elif key[0] in ROSTER:
            if theirs[key][2] != column[2] and key != ("profiles", "role"):  # the app's role is an enum
                differences.append((key, column[2:], theirs[key][2:]))
        elif key not in KNOWN_DIFFERENCES and theirs[key] != column:
            differences.append((key, column[2:], theirs[key][2:]))
    assert differences == []
    our_checks = {(c[0], c[1]): c[2] for c in fresh_schema["constraints"] if c[2].startswith("CHECK")}
    their_checks = {(c[0], c[1]): c[2] for c in adopted["constraints"]}
    for key, definition in our_checks.items():
        assert key in their_checks, f"missing check {key}"
        if key != ("game_platform_sync_state", "game_platform_sync_state_last_result_check"):
            assert their_checks[key] == definition, key
    their_indexes = {i[1] for i in adopted["indexes"]}
    missing = {i[1] for i in fresh_schema["indexes"]} - their_indexes
    assert not missing
    assert fetch(conninfo, "select count(*) as n from job_queue_settings")[0]["n"] == 1


@pytest.mark.parametrize("era", BOTH_ERAS)
def test_the_bundles_tables_are_not_granted_to_the_api_roles(origin, era):
    """The current app's default privileges grant every new table to `authenticated`: ours must not keep it."""
    conninfo = origin(era)
    migrate(conninfo)
    for table in (
        "job_queue",
        "job_queue_settings",
        "job_queue_invocations",
        "job_queue_schedules",
        "game_platform_stats_merged_duplicates",
    ):
        for role in ("anon", "authenticated"):
            (row,) = fetch(conninfo, "select has_table_privilege(%s, %s, 'select') as ok", (role, f"public.{table}"))
            assert not row["ok"], f"{role} can read {table}"


# -- 6. an unknown shape is refused, changing nothing -------------------------------------------

UNKNOWN_SHAPES = {
    "status-it-cannot-map": (
        "alter table job_queue drop constraint job_queue_status_check;"
        " update job_queue set status = 'paused' where id = '60000000-0000-4000-8000-000000000001'",
        "public.job_queue.status holds values this migration cannot map: 'paused' (1 rows)",
    ),
    "column-of-another-type": (
        "alter table job_queue alter column payload type text using payload::text",
        "public.job_queue.payload is text where jsonb was expected",
    ),
    "settings-key-of-another-type": (
        "alter table job_queue_settings drop constraint job_queue_settings_singleton;"
        " alter table job_queue_settings alter column id drop default;"
        " alter table job_queue_settings alter column id type text using id::text",
        "public.job_queue_settings.id is text",
    ),
    "both-user-id-columns": (
        "alter table game_platform_challenge_solves add column synced_user_id text",
        "public.game_platform_challenge_solves has both syned_user_id and synced_user_id",
    ),
    "domain-column-of-another-type": (
        "alter table game_platform_stats alter column total_score type bigint",
        "public.game_platform_stats.total_score is bigint where integer was expected",
    ),
    "worker-run-status-it-cannot-map": (
        "update job_worker_runs set status = 'crashed' where status is null",
        "public.job_worker_runs.status holds values this migration cannot map: 'crashed' (1 rows)",
    ),
    "sync-run-status-it-cannot-map": (
        "update game_platform_sync_runs set status = 'queued' where status = 'running'",
        "public.game_platform_sync_runs.status holds values this migration cannot map: 'queued'",
    ),
}


@pytest.mark.parametrize("shape", sorted(UNKNOWN_SHAPES))
def test_an_unknown_shape_is_refused_and_nothing_changes(origin, shape):
    tweak, message = UNKNOWN_SHAPES[shape]
    conninfo = origin("head" if "job_worker_runs" in tweak else "seed", tweak)
    before = dump(conninfo)
    with pytest.raises(psycopg.errors.RaiseException) as refused:
        apply_migrations(conninfo)
    assert "adoption refused, nothing changed" in str(refused.value)
    assert message in str(refused.value)
    assert dump(conninfo) == before


def test_without_the_schedules_table_recurring_jobs_are_refused(origin):
    conninfo = origin("head")
    without = [m for m in discover() if m.path != SCHEDULES_MIGRATION]
    with pytest.raises(psycopg.errors.RaiseException) as refused:
        apply_migrations(conninfo, without)
    assert "job_queue_schedules does not exist, so the recurring jobs cannot become schedules" in str(refused.value)
    assert fetch(conninfo, "select count(*) as n from job_queue where is_recurring and status = 'pending'")[0]["n"] == 5


def test_the_cli_says_why_it_refuses(origin):
    conninfo = origin("seed", UNKNOWN_SHAPES["status-it-cannot-map"][0])
    env = {**os.environ, "DATABASE_URL": conninfo}
    result = subprocess.run([sys.executable, "scripts/migrate.py"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 1
    assert "migration failed: adoption refused, nothing changed" in result.stderr
    assert "applied" not in result.stdout


def test_the_cli_prints_what_it_converted(origin):
    conninfo = origin("seed")
    env = {**os.environ, "DATABASE_URL": conninfo}
    result = subprocess.run([sys.executable, "scripts/migrate.py"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "notice: adopt job_queue: 1 running job(s) now processing with an expired lease" in out
    assert "notice: adopt job_queue: 5 job(s) kept" in out
    assert "notice: adopt game_platform_stats: 2 duplicate row(s) merged" in out
    assert "notice: adopt game_platform_sync_runs: 4 run(s) kept" in out
    assert "already exists, skipping" not in out
    assert out.index("applied 20261128000050_adopt_original_app.sql") < out.index(
        "applied 20261128000100_job_queue.sql"
    )
    assert next(m.name for m in discover()) == "adopt_original_app"


# -- 7. the documented backup restores the original -------------------------------------------


def pg_tool(name: str, conninfo: str) -> str:
    """A `pg_dump`/`pg_restore` at least as new as the server (the embedded server ships its own)."""
    import re
    import shutil

    (row,) = fetch(conninfo, "select current_setting('server_version_num')::int / 10000 as major")
    candidates: list[str] = []
    try:
        import pgserver

        candidates.append(str(Path(pgserver.__file__).parent / "pginstall" / "bin" / name))
    except ImportError:
        pass
    candidates.append(shutil.which(name) or "")
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            version = subprocess.run([candidate, "--version"], capture_output=True, text=True).stdout
            found = re.search(r"(\d+)\.", version)
            if found and int(found.group(1)) >= row["major"]:
                return candidate
    pytest.skip(f"no {name} for PostgreSQL {row['major']} on this machine")


def test_the_documented_backup_and_rollback_restore_the_original(origin, tmp_path):
    """docs/adoption.md: pg_dump before, and after adopting, drop the two schemas and pg_restore."""
    conninfo = origin("head")
    before = dump(conninfo)
    backup = tmp_path / "before-adoption.dump"
    subprocess.run(
        [pg_tool("pg_dump", conninfo), conninfo, "--format=custom", "--no-owner",
         "--schema=public", "--schema=supabase_migrations", f"--file={backup}"],
        check=True,
    )  # fmt: skip
    migrate(conninfo)
    assert dump(conninfo) != before
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("drop schema public cascade")
        conn.execute("drop schema supabase_migrations cascade")
    subprocess.run([pg_tool("pg_restore", conninfo), "--no-owner", f"--dbname={conninfo}", str(backup)], check=True)
    assert dump(conninfo) == before
