"""scripts/migrate.py: each migration once, in order, recorded; Supabase's roles where missing."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from scripts.local_pg import create_database, drop_database
from scripts.migrate import apply_migrations, discover
from tests.support.api import ROOT


@pytest.fixture
def empty_database(admin_conninfo):
    conninfo = create_database(admin_conninfo, prefix="jq_migrate")
    yield conninfo
    drop_database(admin_conninfo, conninfo)


def _recorded(conninfo):
    with psycopg.connect(conninfo, prepare_threshold=None) as conn:
        return [r[0] for r in conn.execute("select version from supabase_migrations.schema_migrations order by 1")]


def test_migrations_are_named_for_the_supabase_cli():
    migrations = discover()
    assert migrations
    assert all(len(m.version) == 14 for m in migrations)
    assert [m.version for m in migrations] == sorted(m.version for m in migrations)


def test_applies_every_migration_once_and_records_it(empty_database):
    applied = apply_migrations(empty_database)
    assert [m.version for m in applied] == [m.version for m in discover()]
    assert _recorded(empty_database) == [m.version for m in discover()]
    assert apply_migrations(empty_database) == []


def test_cli_runs_twice_harmlessly(empty_database):
    env = {**os.environ, "DATABASE_URL": empty_database}
    first = subprocess.run([sys.executable, "scripts/migrate.py"], cwd=ROOT, env=env, capture_output=True, text=True)
    second = subprocess.run([sys.executable, "scripts/migrate.py"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert "applied 20261128000100_job_queue.sql" in first.stdout
    assert "0 migration(s) applied" in second.stdout
    listing = subprocess.run(
        [sys.executable, "scripts/migrate.py", "--list"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert "pending" not in listing.stdout
    assert "applied  20261128000100_job_queue.sql" in listing.stdout


def test_cli_without_database_url_says_so():
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    result = subprocess.run([sys.executable, "scripts/migrate.py"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr


def test_concurrent_migrators_apply_each_migration_once(empty_database):
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: apply_migrations(empty_database), range(3)))
    applied = [m.version for result in results for m in result]
    assert sorted(applied) == [m.version for m in discover()]


def test_creates_supabase_roles_and_auth_schema(empty_database):
    apply_migrations(empty_database)
    with psycopg.connect(empty_database, prepare_threshold=None) as conn:
        roles = {r[0] for r in conn.execute("select rolname from pg_roles")}
        schemas = {r[0] for r in conn.execute("select nspname from pg_namespace")}
    assert {"anon", "authenticated", "service_role"} <= roles
    assert "auth" in schemas


def test_a_failing_migration_is_rolled_back_and_not_recorded(empty_database, tmp_path):
    from scripts.migrate import Migration

    good = tmp_path / "20990101000000_good.sql"
    good.write_text("create table good_table (id int);")
    bad = tmp_path / "20990101000001_bad.sql"
    bad.write_text("create table half_done (id int); select no_such_function();")
    with pytest.raises(psycopg.Error):
        apply_migrations(
            empty_database,
            [Migration("20990101000000", "good", good), Migration("20990101000001", "bad", bad)],
        )
    with psycopg.connect(empty_database, prepare_threshold=None) as conn:
        tables = {r[0] for r in conn.execute("select tablename from pg_tables where schemaname = 'public'")}
    assert "good_table" in tables
    assert "half_done" not in tables
    assert _recorded(empty_database) == ["20990101000000"]


def test_cli_prints_what_the_migrations_say(empty_database):
    env = {**os.environ, "DATABASE_URL": empty_database}
    result = subprocess.run([sys.executable, "scripts/migrate.py"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    # Without pg_cron the scheduling migration says why it scheduled nothing.
    assert "notice: job queue schedules: pg_cron is" in result.stdout


def test_a_database_migrated_with_a_rewritten_history_is_refused(empty_database, tmp_path):
    from scripts.migrate import Migration, MigrationHistoryError

    apply_migrations(empty_database)
    first = discover()[1]
    renamed = tmp_path / f"{first.version}_another_name.sql"
    renamed.write_text("select 1;")
    with pytest.raises(MigrationHistoryError, match=f"{first.version}: applied as '{first.name}', now 'another_name'"):
        apply_migrations(empty_database, [Migration(first.version, "another_name", renamed)])
    # The app's own migrations, in the same table under other versions, are no concern of ours.
    with psycopg.connect(empty_database, autocommit=True, prepare_threshold=None) as conn:
        conn.execute(
            "insert into supabase_migrations.schema_migrations (version, name) values ('20240101000000', 'app')"
        )
    assert apply_migrations(empty_database) == []
