"""The Game Platform migration: every SPEC 5 table, its keys and index, locked down, safe to re-apply."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from scripts.local_pg import create_database, drop_database
from scripts.migrate import apply_migrations, discover

MIGRATION = Path(__file__).resolve().parents[1] / "supabase/migrations/20261128000400_game_platform.sql"

EXPECTED_COLUMNS = {
    "competitors": {
        "id", "coach_id", "first_name", "last_name", "email",
        "game_platform_id", "game_platform_synced_at", "game_platform_sync_error",
    },
    "teams": {
        "id", "coach_id", "name", "division", "affiliation",
        "game_platform_id", "game_platform_synced_at", "game_platform_sync_error",
    },
    "team_members": {"team_id", "competitor_id", "game_platform_synced_at", "game_platform_sync_error"},
    "game_platform_stats": {
        "competitor_id", "challenges_completed", "monthly_ctf_challenges", "total_score", "last_activity", "synced_at",
    },
    "game_platform_sync_state": {
        "syned_user_id", "last_synced_at", "last_attempt_at", "last_result", "error_message", "needs_totals_refresh",
    },
    "game_platform_challenge_solves": {"syned_user_id", "challenge_solve_id", "source"},
    "game_platform_flash_ctf_events": {"syned_user_id", "event_id"},
    "game_platform_sync_runs": {"id", "status", "started_at", "finished_at", "counts"},
}  # fmt: skip


def _columns(sql, table):
    rows = sql.execute(
        "select column_name from information_schema.columns where table_schema = 'public' and table_name = %s",
        (table,),
    ).fetchall()
    return {r["column_name"] for r in rows}


@pytest.mark.parametrize("table", sorted(EXPECTED_COLUMNS))
def test_table_has_the_spec_columns(sql, table):
    assert EXPECTED_COLUMNS[table] <= _columns(sql, table)


@pytest.mark.parametrize("table", sorted(EXPECTED_COLUMNS))
def test_table_is_locked_down(sql, table):
    row = sql.execute("select relrowsecurity from pg_class where oid = %s::regclass", (f"public.{table}",)).fetchone()
    assert row["relrowsecurity"], "RLS must be enabled"
    policies = sql.execute("select count(*) as n from pg_policies where tablename = %s", (table,)).fetchone()
    assert policies["n"] == 0, "no policy may open the table to API roles"
    for role in ("anon", "authenticated"):
        for privilege in ("select", "insert", "update", "delete"):
            granted = sql.execute(
                "select has_table_privilege(%s, %s, %s) as ok", (role, f"public.{table}", privilege)
            ).fetchone()
            assert not granted["ok"], f"{role} has {privilege} on {table}"
    assert sql.execute(
        "select has_table_privilege('service_role', %s, 'select') as ok", (f"public.{table}",)
    ).fetchone()["ok"]


def test_solves_are_unique_per_user_and_solve_id(sql):
    insert = (
        "insert into game_platform_challenge_solves (syned_user_id, challenge_solve_id, source) values (%s, %s, %s)"
    )
    sql.execute(insert, ("u1", 10, "odl"))
    sql.execute(insert, ("u2", 10, "odl"))
    with pytest.raises(psycopg.errors.UniqueViolation):
        sql.execute(insert, ("u1", 10, "flash_ctf"))
    with pytest.raises(psycopg.errors.CheckViolation):
        sql.execute(insert, ("u3", 11, "bonus"))


def test_flash_ctf_events_are_unique_per_user_and_event(sql):
    insert = "insert into game_platform_flash_ctf_events (syned_user_id, event_id) values (%s, %s)"
    sql.execute(insert, ("u1", "e1"))
    sql.execute(insert, ("u1", "e2"))
    with pytest.raises(psycopg.errors.UniqueViolation):
        sql.execute(insert, ("u1", "e1"))


def test_one_stats_row_per_competitor_and_one_state_per_user(sql):
    competitor = sql.execute("insert into competitors (first_name) values ('Ada') returning id").fetchone()["id"]
    sql.execute("insert into game_platform_stats (competitor_id) values (%s)", (competitor,))
    with pytest.raises(psycopg.errors.UniqueViolation):
        sql.execute("insert into game_platform_stats (competitor_id) values (%s)", (competitor,))
    sql.execute("insert into game_platform_sync_state (syned_user_id) values ('u1')")
    with pytest.raises(psycopg.errors.UniqueViolation):
        sql.execute("insert into game_platform_sync_state (syned_user_id) values ('u1')")


def test_a_raised_flag_must_say_since_when(sql):
    with pytest.raises(psycopg.errors.CheckViolation):
        sql.execute("insert into game_platform_sync_state (syned_user_id, needs_totals_refresh) values ('u1', true)")


def test_flagged_users_have_a_partial_index(sql):
    row = sql.execute(
        "select indexdef from pg_indexes where tablename = 'game_platform_sync_state'"
        " and indexname = 'game_platform_sync_state_needs_totals_refresh_idx'"
    ).fetchone()
    assert row is not None
    assert row["indexdef"].endswith("WHERE needs_totals_refresh")


def test_sweep_query_uses_the_partial_index(sql):
    sql.execute(
        "insert into game_platform_sync_state (syned_user_id, needs_totals_refresh, needs_totals_refresh_since)"
        " select 'u' || g, g % 100 = 0, case when g % 100 = 0 then now() end from generate_series(1, 20000) g"
    )
    sql.execute("analyze game_platform_sync_state")
    plan = "\n".join(
        r["QUERY PLAN"]
        for r in sql.execute(
            "explain select syned_user_id from game_platform_sync_state where needs_totals_refresh"
            " order by needs_totals_refresh_since, syned_user_id limit 100"
        ).fetchall()
    )
    assert "game_platform_sync_state_needs_totals_refresh_idx" in plan


def test_reapplying_the_migration_keeps_the_data(sql):
    competitor = sql.execute("insert into competitors (first_name) values ('Ada') returning id").fetchone()["id"]
    sql.execute("insert into game_platform_sync_state (syned_user_id) values ('u1')")
    sql.execute(MIGRATION.read_bytes())
    kept = sql.execute("select first_name from competitors where id = %s", (competitor,)).fetchone()
    assert kept["first_name"] == "Ada"
    assert sql.execute("select count(*) as n from game_platform_sync_state").fetchone()["n"] == 1


def test_an_existing_app_database_gains_the_missing_columns(admin_conninfo):
    conninfo = create_database(admin_conninfo, prefix="jq_legacy")
    try:
        with psycopg.connect(conninfo, autocommit=True, row_factory=dict_row, prepare_threshold=None) as conn:
            conn.execute("create table competitors (id uuid primary key, coach_id uuid, first_name text)")
            conn.execute("insert into competitors values ('00000000-0000-0000-0000-000000000001', null, 'Grace')")
        apply_migrations(conninfo)
        with psycopg.connect(conninfo, autocommit=True, row_factory=dict_row, prepare_threshold=None) as conn:
            row = conn.execute("select * from competitors").fetchone()
            assert row["first_name"] == "Grace"
            assert row["game_platform_id"] is None
            assert EXPECTED_COLUMNS["competitors"] <= set(row)
    finally:
        drop_database(admin_conninfo, conninfo)


def test_an_existing_app_table_keeps_its_own_security(admin_conninfo):
    """The app's dashboard may read its competitors as `authenticated`: the migration must not cut it off."""
    conninfo = create_database(admin_conninfo, prefix="jq_legacy")
    notices: list[str] = []
    try:
        apply_migrations(conninfo, discover()[:1])  # the Supabase roles exist, as on a real project
        with psycopg.connect(conninfo, autocommit=True, row_factory=dict_row, prepare_threshold=None) as conn:
            conn.execute("create table competitors (id uuid primary key, coach_id uuid)")
            conn.execute("grant select on competitors to authenticated")
        with psycopg.connect(conninfo, autocommit=True, row_factory=dict_row, prepare_threshold=None) as conn:
            conn.add_notice_handler(lambda notice: notices.append(notice.message_primary or ""))
            conn.execute(MIGRATION.read_bytes())
            can_read = conn.execute(
                "select has_table_privilege('authenticated', 'public.competitors', 'select') as ok"
            ).fetchone()["ok"]
            rls = {
                r["relname"]: r["relrowsecurity"]
                for r in conn.execute(
                    "select relname, relrowsecurity from pg_class"
                    " where relname in ('competitors', 'teams') and relnamespace = 'public'::regnamespace"
                ).fetchall()
            }
        assert can_read
        assert rls == {"competitors": False, "teams": True}  # the app's table untouched; ours locked down
        assert any("public.competitors existed before this migration" in n for n in notices)
    finally:
        drop_database(admin_conninfo, conninfo)


# -- the vendor's behaviour (folded into 20261128000400_game_platform.sql) -------------------------

VENDOR_MIGRATION = MIGRATION


@pytest.mark.parametrize(
    ("table", "columns"),
    [
        ("game_platform_challenge_solves", {"raw_payload", "updated_at"}),
        ("game_platform_flash_ctf_events", {"raw_payload", "ended_at", "max_points_possible"}),
        ("game_platform_sync_state", {"last_remote_accessed_at"}),
    ],
)
def test_the_vendor_migration_adds_the_columns_the_vendors_items_need(sql, table, columns):
    assert columns <= _columns(sql, table)


def test_last_result_admits_not_approved_and_still_refuses_nonsense(sql):
    sql.execute("insert into game_platform_sync_state (syned_user_id, last_result) values ('u1', 'not_approved')")
    with pytest.raises(psycopg.errors.CheckViolation):
        sql.execute("insert into game_platform_sync_state (syned_user_id, last_result) values ('u2', 'maybe')")


def test_an_original_apps_narrow_last_result_check_is_widened_keeping_its_rows(sql):
    sql.execute(
        "alter table game_platform_sync_state drop constraint game_platform_sync_state_last_result_check;"
        "alter table game_platform_sync_state add constraint game_platform_sync_state_last_result_check"
        " check (last_result in ('success', 'failure'))"
    )
    sql.execute("insert into game_platform_sync_state (syned_user_id, last_result) values ('old', 'success')")
    sql.execute(VENDOR_MIGRATION.read_bytes())
    sql.execute("insert into game_platform_sync_state (syned_user_id, last_result) values ('new', 'not_approved')")
    rows = sql.execute("select syned_user_id, last_result from game_platform_sync_state order by 1").fetchall()
    assert [(r["syned_user_id"], r["last_result"]) for r in rows] == [("new", "not_approved"), ("old", "success")]


def test_event_ids_of_the_old_form_are_renamed_with_their_solves(sql):
    start = 1_790_000_000
    sql.execute(
        "insert into game_platform_flash_ctf_events (syned_user_id, event_id, flash_ctf_name, started_at) values"
        " ('u1', %(old)s, 'Flash CTF: Bits', to_timestamp(%(start)s)),"
        " ('u2', %(old)s, 'Flash CTF: Bits', to_timestamp(%(start)s)),"
        " ('u2', %(new)s, 'Flash CTF: Bits', to_timestamp(%(start)s)),"
        " ('u3', 'custom-id', 'Flash CTF: Bits', to_timestamp(%(start)s))",
        {"old": f"{start}:Flash CTF: Bits", "new": f"Flash CTF: Bits:{start}", "start": start},
    )
    sql.execute(
        "insert into game_platform_challenge_solves (syned_user_id, challenge_solve_id, source, flash_ctf_event_id)"
        " values ('u1', 1, 'flash_ctf', %s), ('u1', 2, 'odl', null)",
        (f"{start}:Flash CTF: Bits",),
    )
    sql.execute(VENDOR_MIGRATION.read_bytes())
    sql.execute(VENDOR_MIGRATION.read_bytes())  # a second run changes nothing more
    events = sql.execute("select syned_user_id, event_id from game_platform_flash_ctf_events order by 1, 2").fetchall()
    assert [(e["syned_user_id"], e["event_id"]) for e in events] == [
        ("u1", f"Flash CTF: Bits:{start}"),
        ("u2", f"{start}:Flash CTF: Bits"),  # its new id was taken: left as it is, nothing dropped
        ("u2", f"Flash CTF: Bits:{start}"),
        ("u3", "custom-id"),
    ]
    solves = sql.execute("select flash_ctf_event_id from game_platform_challenge_solves order by challenge_solve_id")
    assert [r["flash_ctf_event_id"] for r in solves] == [f"Flash CTF: Bits:{start}", None]
