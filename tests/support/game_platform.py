"""Harness for the Game Platform job tests: seed a roster, drain the queue with the real worker, read state back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg

from lib.db import Database
from lib.queue import Queue
from lib.settings import Settings, load_settings
from lib.worker import Worker
from sandbox.game_platform import Dataset, FakeGamePlatform

DOMAIN_TABLES = (
    "competitors",
    "teams",
    "team_members",
    "game_platform_stats",
    "game_platform_sync_state",
    "game_platform_challenge_solves",
    "game_platform_flash_ctf_events",
    "game_platform_sync_runs",
)


def platform_settings(database_url: str, fake: FakeGamePlatform, **overrides: str) -> Settings:
    """Settings pointing at the fake vendor, with a generous worker budget unless overridden."""
    environ = {
        "DATABASE_URL": database_url,
        "GAME_PLATFORM_API_BASE_URL": fake.base_url,
        "GAME_PLATFORM_API_TOKEN": fake.token,
        "GAME_PLATFORM_CONCURRENCY": "4",
        "GAME_PLATFORM_TIMEOUT_SECONDS": "3",
        "JOB_WORKER_MAX_DURATION_SECONDS": "60",
        "JOB_WORKER_FINISH_MARGIN_SECONDS": "0",
        "JOB_WORKER_MIN_JOB_SECONDS": "0",
        "JOB_RETRY_BASE_SECONDS": "1",
    }
    environ.update(overrides)
    return load_settings(environ)


def seed_roster(
    sql: psycopg.Connection, dataset: Dataset, *, skip_teams: bool = False
) -> dict[str, list[dict[str, Any]]]:
    """Insert the dataset's coaches (approved coach profiles), competitors, teams and team members."""
    rows = dataset.local_rows()
    with sql.cursor() as cur:
        cur.executemany(
            "insert into profiles (id, role, is_approved, first_name, last_name, email, game_platform_user_id)"
            " values (%(id)s, %(role)s, %(is_approved)s, %(first_name)s, %(last_name)s, %(email)s,"
            " %(game_platform_user_id)s) on conflict (id) do nothing",
            rows["profiles"],
        )
        cur.executemany(
            "insert into competitors (id, coach_id, first_name, last_name, email, game_platform_id)"
            " values (%(id)s, %(coach_id)s, %(first_name)s, %(last_name)s, %(email)s, %(game_platform_id)s)",
            rows["competitors"],
        )
        if not skip_teams:
            cur.executemany(
                "insert into teams (id, coach_id, name, division, affiliation, game_platform_id)"
                " values (%(id)s, %(coach_id)s, %(name)s, %(division)s, %(affiliation)s, %(game_platform_id)s)",
                rows["teams"],
            )
            cur.executemany(
                "insert into team_members (team_id, competitor_id) values (%(team_id)s, %(competitor_id)s)",
                rows["team_members"],
            )
    return rows


def drain_queue(db: Database, settings: Settings, *, max_rounds: int = 50) -> list[dict[str, Any]]:
    """Run the real worker, one job per invocation, until no job is due; return each finished job's row."""
    worker = Worker(db, settings)
    finished: list[dict[str, Any]] = []
    for _ in range(max_rounds):
        report = worker.drain(limit=1, force=False, trigger_source="test")
        if not report.results:
            return finished
        for result in report.results:
            row = db.fetchone("select * from job_queue where id = %s", (result.id,))
            assert row is not None
            finished.append(row)
    raise AssertionError(f"the queue still had due jobs after {max_rounds} worker runs")


def enqueue(db: Database, task_type: str, payload: Mapping[str, Any]) -> Any:
    """Enqueue as the admin trigger endpoints do (deduplicated, due now)."""
    return Queue(db).enqueue_unique(task_type, dict(payload)).job_id


def snapshot(sql: psycopg.Connection, tables: tuple[str, ...] = DOMAIN_TABLES) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every domain table, as text, in a stable order: equal snapshots mean unchanged tables."""
    state: dict[str, list[tuple[Any, ...]]] = {}
    for table in tables:
        rows = sql.execute(f"select t::text as row from {table} t order by 1").fetchall()
        state[table] = [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in rows]
    return state


def count(sql: psycopg.Connection, query: str, params: Any = None) -> int:
    row = sql.execute(query, params).fetchone()
    assert row is not None
    value = next(iter(row.values())) if isinstance(row, dict) else row[0]
    return int(value)
