"""One PostgreSQL connection per invocation, safe behind Supabase's transaction pooler.

Serverless connections go through the pooler (PgBouncer/Supavisor, port 6543),
which hands each transaction to whichever server connection is free. So:
- no server-side prepared statements (`prepare_threshold=None`);
- no session state: autocommit, every statement its own transaction unless a
  caller opens one explicitly; no SET, LISTEN or session advisory locks;
- the statement timeout is enforced from the client: poolers refuse or ignore
  the `options` startup parameter that would set it on the server.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, LiteralString

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row

from lib.errors import DatabaseUnavailable, ServerMisconfigured
from lib.settings import Settings, get_settings, secret_value

Params = Sequence[Any] | dict[str, Any] | None
Row = dict[str, Any]


class StatementTimeout(DatabaseUnavailable):
    """A statement ran past DB_STATEMENT_TIMEOUT_SECONDS and was cancelled."""

    code = "database_timeout"


class _StatementWatchdog:
    """Cancels the running statement once it exceeds the timeout.

    One polling thread per connection: arming and disarming are plain attribute
    writes on the hot path, so a statement pays no lock or wake-up for the guard.
    """

    _POLL_SECONDS = 0.25

    def __init__(self, conn: psycopg.Connection[Any], timeout: float) -> None:
        self._conn = conn
        self._timeout = timeout
        self._deadline: float | None = None
        self.fired = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="db-statement-watchdog", daemon=True)
        self._thread.start()

    def arm(self) -> None:
        self.fired = False
        self._deadline = time.monotonic() + self._timeout

    def disarm(self) -> None:
        self._deadline = None

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(self._POLL_SECONDS):
            deadline = self._deadline
            if deadline is not None and time.monotonic() >= deadline:
                self._deadline = None
                self.fired = True
                # A failed cancel leaves the statement to the server's own limits.
                with contextlib.suppress(Exception):
                    self._conn.cancel_safe(timeout=2.0)


class Database:
    """The invocation's connection. Every statement goes through `execute`; rows are dicts."""

    def __init__(self, conn: psycopg.Connection[Row], statement_timeout: float) -> None:
        self.conn = conn
        self._watchdog = _StatementWatchdog(conn, statement_timeout)
        self.statements = 0  # counted for the round-trip benchmark and tests

    def execute(self, query: LiteralString, params: Params = None) -> psycopg.Cursor[Row]:
        self.statements += 1
        self._watchdog.arm()
        try:
            return self.conn.execute(query, params)
        except pg_errors.QueryCanceled as exc:
            if self._watchdog.fired:
                raise StatementTimeout("The database did not answer in time; try again shortly.") from exc
            raise
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable("The database connection failed; try again shortly.") from exc
        finally:
            self._watchdog.disarm()

    def fetchall(self, query: LiteralString, params: Params = None) -> list[Row]:
        return self.execute(query, params).fetchall()

    def fetchone(self, query: LiteralString, params: Params = None) -> Row | None:
        return self.execute(query, params).fetchone()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group statements atomically (BEGIN/COMMIT are sent by psycopg)."""
        with self.conn.transaction():
            yield

    def close(self) -> None:
        self._watchdog.stop()
        self.conn.close()


def _conninfo(settings: Settings) -> str:
    url = secret_value(settings.database_url)
    if not url:
        raise ServerMisconfigured("DATABASE_URL is not set: the bundle cannot reach its database.")
    return url


@contextmanager
def connect(settings: Settings | None = None) -> Iterator[Database]:
    """Open the invocation's connection; raise `DatabaseUnavailable` if it cannot be had."""
    settings = settings or get_settings()
    try:
        conn = psycopg.connect(
            _conninfo(settings),
            autocommit=True,
            prepare_threshold=None,
            connect_timeout=settings.db_connect_timeout_seconds,
            application_name="job-queue-bundle",
            row_factory=dict_row,
        )
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable("The database is unreachable; try again shortly.") from exc
    db = Database(conn, settings.db_statement_timeout_seconds)
    try:
        yield db
    finally:
        db.close()
