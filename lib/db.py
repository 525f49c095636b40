"""One PostgreSQL connection per invocation, safe behind Supabase's transaction pooler.

An invocation holds at most one connection; a warm instance keeps it for its
next invocation instead of connecting again (see `_WarmConnections`).

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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, LiteralString

import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus
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

    def __init__(self, connection: Callable[[], psycopg.Connection[Any]], timeout: float) -> None:
        self._connection = connection
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
                    self._connection().cancel_safe(timeout=2.0)


class Database:
    """The invocation's connection. Every statement goes through `execute`; rows are dicts."""

    def __init__(
        self,
        conn: psycopg.Connection[Row],
        statement_timeout: float,
        *,
        reopen: Callable[[], psycopg.Connection[Row]] | None = None,
    ) -> None:
        self.conn = conn
        self._watchdog = _StatementWatchdog(lambda: self.conn, statement_timeout)
        # Set for a connection kept from an earlier invocation: how to replace it
        # should it turn out dead (the pooler or a network hop closed it meanwhile).
        self._reopen = reopen
        self.statements = 0  # counted for the round-trip benchmark and tests

    def execute(self, query: LiteralString, params: Params = None) -> psycopg.Cursor[Row]:
        self.statements += 1
        self._watchdog.arm()
        try:
            return self._execute_once(query, params)
        except pg_errors.QueryCanceled as exc:
            if self._watchdog.fired:
                raise StatementTimeout("The database did not answer in time; try again shortly.") from exc
            raise
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable("The database connection failed; try again shortly.") from exc
        finally:
            self._watchdog.disarm()

    def _execute_once(self, query: LiteralString, params: Params) -> psycopg.Cursor[Row]:
        reopen, self._reopen = self._reopen, None  # only the first statement may find a kept connection dead
        try:
            return self.conn.execute(query, params)
        except psycopg.OperationalError:
            if reopen is None or not self.conn.broken:
                raise
        # The kept connection was dead before this statement reached the server:
        # replace it and send the statement once more.
        with contextlib.suppress(Exception):
            self.conn.close()
        self.conn = reopen()
        return self.conn.execute(query, params)

    def fetchall(self, query: LiteralString, params: Params = None) -> list[Row]:
        return self.execute(query, params).fetchall()

    def fetchone(self, query: LiteralString, params: Params = None) -> Row | None:
        return self.execute(query, params).fetchone()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group statements atomically (BEGIN/COMMIT are sent by psycopg)."""
        with self.conn.transaction():
            yield

    def detach(self) -> psycopg.Connection[Row]:
        """Stop guarding statements and hand the connection over (to be kept or closed)."""
        self._watchdog.stop()
        return self.conn

    def close(self) -> None:
        self.detach().close()


class _WarmConnections:
    """Connections left open by finished invocations, for the next invocation of this instance.

    A warm serverless instance serves invocation after invocation; opening a new
    connection for each cost more than the jobs themselves (connect, TLS, and a
    fresh server session that must plan the queue's functions again). Behind the
    transaction pooler a kept connection carries no session state, so the next
    invocation may take it over. One invocation holds a connection at a time;
    a connection mid-transaction, broken, or idle too long is closed instead.
    """

    MAX_IDLE = 4
    # Past this, a frozen instance's connection has likely been dropped by the
    # pooler or a NAT on the way; a new one is cheaper than a failed first try.
    MAX_IDLE_SECONDS = 120.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[tuple[str, float, psycopg.Connection[Row]]] = []

    def take(self, conninfo: str) -> psycopg.Connection[Row] | None:
        now = time.time()  # wall clock: a frozen instance's monotonic clock may not advance
        found: psycopg.Connection[Row] | None = None
        stale: list[psycopg.Connection[Row]] = []
        with self._lock:
            keep = []
            for item in self._idle:
                key, since, conn = item
                if now - since >= self.MAX_IDLE_SECONDS:
                    stale.append(conn)
                elif found is None and key == conninfo:
                    found = conn
                else:
                    keep.append(item)
            self._idle = keep
        for conn in stale:
            with contextlib.suppress(Exception):
                conn.close()
        return found

    def give(self, conninfo: str, conn: psycopg.Connection[Row]) -> None:
        if not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE:
            with self._lock:
                if len(self._idle) < self.MAX_IDLE:
                    self._idle.append((conninfo, time.time(), conn))
                    return
        with contextlib.suppress(Exception):
            conn.close()

    def clear(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for _, _, conn in idle:
            with contextlib.suppress(Exception):
                conn.close()


_warm = _WarmConnections()


def _conninfo(settings: Settings) -> str:
    url = secret_value(settings.database_url)
    if not url:
        raise ServerMisconfigured("DATABASE_URL is not set: the bundle cannot reach its database.")
    return url


def _open(conninfo: str, settings: Settings) -> psycopg.Connection[Row]:
    try:
        return psycopg.connect(
            conninfo,
            autocommit=True,
            prepare_threshold=None,
            connect_timeout=settings.db_connect_timeout_seconds,
            application_name="job-queue-bundle",
            row_factory=dict_row,
            # A network hop that silently drops the connection makes writes hang
            # for many minutes; these make the kernel give up within seconds.
            tcp_user_timeout=10_000,
            keepalives_idle=30,
            keepalives_interval=10,
            keepalives_count=3,
        )
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable("The database is unreachable; try again shortly.") from exc


@contextmanager
def connect(settings: Settings | None = None) -> Iterator[Database]:
    """The invocation's connection: one kept from an earlier invocation, or a new one.

    Raises `DatabaseUnavailable` if none can be had. Afterwards the connection is
    kept for the next invocation when it is healthy and idle, else closed.
    """
    settings = settings or get_settings()
    conninfo = _conninfo(settings)
    kept = _warm.take(conninfo)

    def reopen() -> psycopg.Connection[Row]:
        return _open(conninfo, settings)

    if kept is None:
        db = Database(reopen(), settings.db_statement_timeout_seconds)
    else:
        db = Database(kept, settings.db_statement_timeout_seconds, reopen=reopen)
    try:
        yield db
    finally:
        _warm.give(conninfo, db.detach())


def close_kept_connections() -> None:
    """Close the connections kept for later invocations (tests, process shutdown)."""
    _warm.clear()
