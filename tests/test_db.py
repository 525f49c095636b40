"""lib/db.py: kept connections for warm invocations, and what must never be kept."""

from __future__ import annotations

import psycopg
import pytest

from lib.db import DatabaseUnavailable, close_kept_connections, connect
from lib.settings import load_settings


@pytest.fixture
def settings(clean_db, direct_database_url):
    """The bundle's settings on a direct connection: these tests tell connections apart by backend pid.

    Through a transaction pooler one client connection is not one backend, so
    the pid says nothing about which client connection was kept.
    """
    close_kept_connections()
    yield load_settings({"DATABASE_URL": direct_database_url})
    close_kept_connections()


def _backend_pid(db) -> int:
    return db.fetchone("select pg_backend_pid() as pid")["pid"]


def test_a_warm_invocation_reuses_the_previous_connection(settings):
    with connect(settings) as db:
        first = _backend_pid(db)
    with connect(settings) as db:
        assert _backend_pid(db) == first


def test_overlapping_invocations_never_share_a_connection(settings):
    with connect(settings) as a, connect(settings) as b:
        assert _backend_pid(a) != _backend_pid(b)


def test_a_kept_connection_found_dead_is_replaced_transparently(settings, sql):
    with connect(settings) as db:
        dead = _backend_pid(db)
    sql.execute("select pg_terminate_backend(%s)", (dead,))
    with connect(settings) as db:
        assert db.fetchone("select 41 + 1 as answer") == {"answer": 42}
        assert _backend_pid(db) != dead
        assert db.statements == 2


def test_only_the_first_statement_may_reconnect(settings, sql):
    with connect(settings) as db:
        db.fetchone("select 1")
        sql.execute("select pg_terminate_backend(%s)", (_backend_pid(db),))
        with pytest.raises(DatabaseUnavailable):
            db.fetchone("select 1")  # mid-invocation: the caller must know its session was lost


def test_a_connection_left_inside_a_transaction_is_not_kept(settings):
    with connect(settings) as db:
        first = _backend_pid(db)
        db.conn.execute("begin")
    with connect(settings) as db:
        assert _backend_pid(db) != first


def test_a_connection_after_a_failed_statement_is_kept_when_healthy(settings):
    with connect(settings) as db:
        first = _backend_pid(db)
        with pytest.raises(psycopg.errors.UndefinedTable):
            db.execute("select * from no_such_table")
    with connect(settings) as db:
        assert _backend_pid(db) == first  # autocommit: the failed statement left nothing open


def test_connections_idle_too_long_are_closed_not_reused(settings, monkeypatch):
    from lib import db as db_module

    with connect(settings) as db:
        first = _backend_pid(db)
    monkeypatch.setattr(db_module._WarmConnections, "MAX_IDLE_SECONDS", 0.0)
    with connect(settings) as db:
        assert _backend_pid(db) != first


def test_connections_are_kept_per_database(settings, admin_conninfo):
    with connect(settings) as db:
        first = _backend_pid(db)
    other = load_settings({"DATABASE_URL": admin_conninfo})
    with connect(other) as db:
        assert _backend_pid(db) != first
