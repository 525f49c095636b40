"""Shared fixtures: a real PostgreSQL, a fresh migrated database, api files served over HTTP.

PostgreSQL is `DATABASE_URL`'s server when set (CI runs the suite once against
the machine's PostgreSQL 15 this way), else an embedded one from `pgserver`.
Each test run creates its own database with `scripts/migrate.py`'s code and
drops it at the end; each test starts from empty tables.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from lib.db import Database, connect
from lib.jobs.registry import TaskRegistry
from lib.queue import Queue
from lib.settings import load_settings, reload_settings, variable_names
from scripts.local_pg import fresh_database, postgres_server
from tests.support.api import ApiServer
from tests.support.jobs import JobFactory
from tests.support.secrets import CRON_SECRET, RUNNER_SECRET
from tests.support.tasks import recorder, test_registry

pytest_plugins = ["tests.support.game_platform_fixtures"]

# Variables the bundle reads; each test starts with none of them but what it sets,
# so a developer's shell cannot leak into a test.
APP_VARIABLES = variable_names()


@pytest.fixture(scope="session")
def admin_conninfo() -> Iterator[str]:
    """The PostgreSQL server of this test run."""
    with postgres_server() as conninfo:
        yield conninfo


@pytest.fixture(scope="session")
def database_url(admin_conninfo: str) -> Iterator[str]:
    """A database created and migrated for this test run."""
    with fresh_database(admin_conninfo, prefix="jq_test") as conninfo:
        yield conninfo


@pytest.fixture(scope="session")
def direct_database_url(database_url: str) -> str:
    """The run's database reached without any pooler in between.

    For tests that need one client connection to be one server backend
    (`pg_terminate_backend`, backend pids, session state). CI runs the suite a
    second time with `DATABASE_URL` pointing at PgBouncer in transaction mode and
    `DIRECT_DATABASE_URL` at the PostgreSQL behind it; elsewhere both are the same.
    """
    direct = os.environ.get("DIRECT_DATABASE_URL", "").strip()
    if not direct:
        return database_url
    return make_conninfo(direct, dbname=str(conninfo_to_dict(database_url)["dbname"]))


def _reset_tables(conninfo: str) -> None:
    with psycopg.connect(conninfo, autocommit=True, prepare_threshold=None) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "select format('%I.%I', schemaname, tablename) from pg_tables where schemaname = 'public'"
            ).fetchall()
        ]
        if tables:
            conn.execute(f"truncate {', '.join(tables)} restart identity cascade")
        conn.execute("insert into job_queue_settings (id) values (true) on conflict do nothing")


@pytest.fixture
def clean_db(database_url: str) -> str:
    """The run's database with every table emptied (and the settings row restored)."""
    _reset_tables(database_url)
    return database_url


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, clean_db: str) -> Callable[..., None]:
    """Set the bundle's environment for this test; call it again to change variables."""
    for name in APP_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    base = {
        "DATABASE_URL": clean_db,
        "CRON_SECRET": CRON_SECRET,
        "JOB_QUEUE_RUNNER_SECRET": RUNNER_SECRET,
        "DB_CONNECT_TIMEOUT_SECONDS": "2",
    }

    def configure(**overrides: str | None) -> None:
        for name, value in {**base, **overrides}.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        reload_settings()

    configure()
    yield configure
    monkeypatch.undo()
    reload_settings_safely()


def reload_settings_safely() -> None:
    with contextlib.suppress(Exception):
        reload_settings()


@pytest.fixture
def db(clean_db: str) -> Iterator[Database]:
    """A connection through the bundle's own database layer."""
    with connect(load_settings({"DATABASE_URL": clean_db})) as database:
        yield database


@pytest.fixture
def queue(db: Database) -> Queue:
    return Queue(db)


@pytest.fixture
def sql(clean_db: str) -> Iterator[psycopg.Connection]:
    """A plain autocommit connection for arranging and inspecting state (pooler-safe: nothing prepared)."""
    from psycopg.rows import dict_row

    with psycopg.connect(clean_db, autocommit=True, row_factory=dict_row, prepare_threshold=None) as conn:
        yield conn


@pytest.fixture
def job_factory(sql: psycopg.Connection) -> JobFactory:
    """Stage jobs in any state (tests/support/jobs.py)."""
    return JobFactory(sql)


@pytest.fixture
def task_registry() -> TaskRegistry:
    """This test's own registry: the built-in and the test task types (tests.support.tasks); `serve` serves it."""
    return test_registry()


@pytest.fixture
def test_tasks(task_registry: TaskRegistry) -> TaskRegistry:
    """The registry holding the test task types, their run counts cleared."""
    recorder.runs.clear()
    return task_registry


@pytest.fixture
def serve(task_registry: TaskRegistry) -> Iterator[Callable[[str], ApiServer]]:
    """Serve api files over real HTTP, with this test's registry: `serve("api/jobs/run.py")`."""
    servers: list[ApiServer] = []

    def start(relative_path: str) -> ApiServer:
        server = ApiServer(relative_path, registry=task_registry)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def worker_api(app_env: Callable[..., None], test_tasks: TaskRegistry, serve: Callable[[str], ApiServer]) -> ApiServer:
    return serve("api/jobs/run.py")


@pytest.fixture
def admin_env(app_env: Callable[..., None], sql: psycopg.Connection) -> Iterator[Callable[..., None]]:
    """`app_env` plus admin sessions: SUPABASE_JWT_SECRET set, an admin and a coach profile.

    Headers: `tests.support.tokens.admin_headers()` / `coach_headers()`.
    """
    from lib.auth.admin import reset_caches
    from tests.support.tokens import JWT_SECRET, add_profiles

    reset_caches()
    app_env(SUPABASE_JWT_SECRET=JWT_SECRET)
    add_profiles(sql)
    yield app_env
    reset_caches()
