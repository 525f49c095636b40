"""lib/db.py: kept connections for warm invocations, and what must never be kept."""

from __future__ import annotations

import time

import psycopg
import pytest

from lib.db import close_kept_connections, connect
from lib.errors import DatabaseUnavailable
from lib.settings import load_settings
from tests.support.pg_proxy import pg_proxy


@pytest.fixture
def settings(clean_db, direct_database_url):
    """The bundle's settings on a direct connection: these tests tell connections apart by backend pid
    and terminate backends.

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
    _wait_for_exit(sql, dead)  # gone while the connection sat idle, as a pooler or NAT drops one
    with connect(settings) as db:
        assert db.fetchone("select 41 + 1 as answer") == {"answer": 42}
        assert _backend_pid(db) != dead
        assert db.statements == 2


def test_a_connection_found_dead_between_statements_is_replaced_before_the_next_is_sent(settings, sql):
    with connect(settings) as db:
        dead = _backend_pid(db)
        sql.execute("select pg_terminate_backend(%s)", (dead,))
        _wait_for_exit(sql, dead)
        assert db.fetchone("select 41 + 1 as answer") == {"answer": 42}
        assert _backend_pid(db) != dead
        assert db.reconnects == 1


def _wait_for_exit(sql, pid: int) -> None:
    for _ in range(200):
        if not sql.execute("select 1 from pg_stat_activity where pid = %s", (pid,)).fetchone():
            return
        time.sleep(0.01)
    raise AssertionError(f"backend {pid} did not exit")


@pytest.fixture
def proxied(clean_db, sql):
    """Settings whose connections pass through a proxy that can lose a reply; a sequence counts runs."""
    close_kept_connections()
    sql.execute("drop sequence if exists lost_reply_seq")
    sql.execute("create sequence lost_reply_seq")
    with pg_proxy(clean_db) as proxy:
        yield proxy, load_settings({"DATABASE_URL": proxy.conninfo})
    close_kept_connections()
    sql.execute("drop sequence lost_reply_seq")


def test_a_statement_whose_reply_was_lost_is_not_sent_again(proxied, sql):
    proxy, settings = proxied
    with connect(settings) as db:
        db.fetchone("select 1")
    with connect(settings) as db:  # the kept connection: its first statement used to be re-sent
        proxy.drop_next_reply()
        with pytest.raises(DatabaseUnavailable):
            db.fetchone("select nextval('lost_reply_seq')")
    assert proxy.replies_dropped == 1
    # It ran once, on the server; the client was not told, and did not try again.
    assert sql.execute("select last_value from lost_reply_seq").fetchone()["last_value"] == 1


def test_a_repeatable_statement_whose_reply_was_lost_is_sent_again_on_a_new_connection(proxied, sql):
    proxy, settings = proxied
    with connect(settings) as db:
        db.fetchone("select 1")
        proxy.drop_next_reply()
        row = db.fetchone("select nextval('lost_reply_seq') as n", repeatable=True)
        assert db.reconnects == 1
    assert row == {"n": 2}  # the first run's reply was lost: the sequence shows both runs
    assert proxy.accepted == 2


def test_nothing_is_sent_again_inside_a_transaction(proxied, sql):
    proxy, settings = proxied
    with connect(settings) as db, db.transaction():
        proxy.drop_next_reply()
        with pytest.raises(DatabaseUnavailable):
            db.fetchone("select nextval('lost_reply_seq')", repeatable=True)
    assert proxy.accepted == 1


def test_a_connection_cut_while_idle_is_replaced_before_sending(proxied, sql):
    proxy, settings = proxied
    with connect(settings) as db:
        db.fetchone("select 1")
        proxy.cut()
        time.sleep(0.05)  # let the hang-up reach the client's socket
        assert db.fetchone("select nextval('lost_reply_seq') as n") == {"n": 1}
        assert db.reconnects == 1


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
