"""The Game Platform store: typed write rows that match their SQL, and the fenced sync-run functions."""

from __future__ import annotations

import uuid

import pytest

from lib.game_platform.store import QUERIES, ROW_TYPES, GamePlatformStore, recordset_columns, recordset_mismatches
from lib.sql import parse_queries


def test_every_recordset_reads_exactly_the_fields_of_its_row_type():
    assert recordset_mismatches() == []
    for name, (row_type, complete) in ROW_TYPES.items():
        if complete:
            assert recordset_columns(QUERIES[name]) == row_type._fields, name


def test_a_misspelt_recordset_column_is_caught():
    path = "lib/game_platform/queries.sql"
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    misspelt = parse_queries(text.replace("challenges_solved integer,", "challenge_solved integer,", 1), "queries.sql")
    (problem,) = recordset_mismatches(misspelt)
    assert "upsert_flash_events" in problem
    assert "FlashEventRow" in problem


def test_the_sync_run_functions_are_for_the_service_role_only(sql):
    rows = sql.execute(
        "select p.oid::regprocedure::text as f,"
        " has_function_privilege('anon', p.oid, 'execute') as anon,"
        " has_function_privilege('authenticated', p.oid, 'execute') as authenticated,"
        " has_function_privilege('service_role', p.oid, 'execute') as service"
        " from pg_proc p where p.pronamespace = 'public'::regnamespace"
        " and p.proname like 'game\\_platform\\_sync\\_run\\_%'"
    ).fetchall()
    assert len(rows) == 6
    assert [r["f"] for r in rows if r["anon"] or r["authenticated"] or not r["service"]] == []


@pytest.fixture
def stale_sync_run(sql):
    gone = uuid.uuid4()
    row = sql.execute(
        "insert into game_platform_sync_runs (status, job_id, started_by_job_id) values ('running', %s, %s)"
        " returning id",
        (gone, gone),
    ).fetchone()
    return row["id"], gone


def test_a_sync_run_whose_job_is_gone_is_superseded(db, sql, stale_sync_run):
    sync_run_id, gone = stale_sync_run
    assert GamePlatformStore(db).supersede_stale_sync_run(None) is None
    row = sql.execute("select status, error, finished_at from game_platform_sync_runs where id = %s", (sync_run_id,))
    found = row.fetchone()
    assert found["status"] == "failed"
    assert found["error"] == f"abandoned: the job driving it ({gone}) is gone"
    assert found["finished_at"] is not None


def test_only_the_driving_job_moves_a_sync_run(db, sql, stale_sync_run):
    sync_run_id, owner = stale_sync_run
    store = GamePlatformStore(db)
    other = uuid.uuid4()
    assert store.checkpoint_sync_run(sync_run_id, other, {"phase": "teams"}, {}) is False
    assert store.hand_over_sync_run(sync_run_id, other, other, {}, {}) is False
    assert store.finish_sync_run(sync_run_id, other, status="completed", progress={}, counts={}) is False
    resumed = store.resume_sync_run(other, sync_run_id)
    assert resumed is not None
    assert (resumed.owned, resumed.job_id) == (False, owner)
    assert store.hand_over_sync_run(sync_run_id, owner, other, {"phase": "teams"}, {}) is True
    assert store.checkpoint_sync_run(sync_run_id, owner, {}, {}) is False, "handed over: no longer the owner's"
    resumed = store.resume_sync_run(other, sync_run_id)
    assert resumed is not None
    assert (resumed.owned, resumed.progress) == (True, {"phase": "teams"})
    assert store.finish_sync_run(sync_run_id, other, status="completed", progress={}, counts={}) is True
    row = sql.execute("select status, invocations from game_platform_sync_runs where id = %s", (sync_run_id,))
    assert row.fetchone() == {"status": "completed", "invocations": 2}
