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

A connection found dead before a statement is sent (closed, or its socket shows
the server hung up) is replaced and the statement sent on the new one: nothing
reached the dead one. A statement that fails after it was sent may have run, so
it is sent again only when its caller declares it safe to repeat
(`repeatable=True`), and never inside a transaction.

Failures are the database's own (lib.errors): `DatabaseUnavailable` (and its
`StatementTimeout`), `DatabaseNotMigrated`, and `ConfigurationError` for a
missing or malformed DATABASE_URL. None knows HTTP: `lib.http` answers them.
"""

from __future__ import annotations

import contextlib
import select
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, LiteralString

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

from lib.errors import ConfigurationError, DatabaseNotMigrated, DatabaseUnavailable, StatementTimeout
from lib.observability import log
from lib.settings import Settings, get_settings, secret_value

Params = Sequence[Any] | dict[str, Any] | None
Row = dict[str, Any]


class _StatementWatchdog:
    """Cancels the running statement once it exceeds the timeout.

    One polling thread per process watches every connection's guard; it starts
    with the first guard and lives as long as the process. A thread started per
    invocation (per connection) cost ~0.15-0.5 ms of every invocation, more on
    a busy machine (`start()` returns only once the new thread has run).
    Arming and disarming are plain attribute writes on the hot path, so a
    statement pays no lock or wake-up for the guard.
    """

    _POLL_SECONDS = 0.25
    _lock: ClassVar[threading.Lock] = threading.Lock()
    # Weak: a guard whose connection was dropped without `stop()` leaves with it.
    _watched: ClassVar[weakref.WeakSet[_StatementWatchdog]] = weakref.WeakSet()
    _thread: ClassVar[threading.Thread | None] = None

    def __init__(self, connection: Callable[[], psycopg.Connection[Any]], timeout: float) -> None:
        self._connection = connection
        self._timeout = timeout
        self._deadline: float | None = None
        self.fired = False
        cls = _StatementWatchdog
        with cls._lock:
            cls._watched.add(self)
            if cls._thread is None or not cls._thread.is_alive():  # first use, or a forked child
                cls._thread = threading.Thread(target=cls._watch_all, name="db-statement-watchdog", daemon=True)
                cls._thread.start()

    def arm(self) -> None:
        self.fired = False
        self._deadline = time.monotonic() + self._timeout

    def disarm(self) -> None:
        self._deadline = None

    def stop(self) -> None:
        self._deadline = None
        with self._lock:
            self._watched.discard(self)

    def _check(self) -> None:
        deadline = self._deadline
        if deadline is not None and time.monotonic() >= deadline:
            self._deadline = None
            self.fired = True
            # A failed cancel leaves the statement to the server's own limits.
            with contextlib.suppress(Exception):
                self._connection().cancel_safe(timeout=2.0)

    @classmethod
    def _watch_all(cls) -> None:
        while True:
            time.sleep(cls._POLL_SECONDS)
            with cls._lock:
                watched = list(cls._watched)
            for guard in watched:
                guard._check()


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
        # How to replace the connection should it turn out dead (the server
        # restarted, or the pooler or a network hop closed it).
        self._reopen = reopen
        self._transactions = 0
        self.statements = 0  # counted for the round-trip benchmark and tests
        self.reconnects = 0

    def execute(self, query: LiteralString, params: Params = None, *, repeatable: bool = False) -> psycopg.Cursor[Row]:
        """Send one statement. `repeatable`: running it twice does what running it once does."""
        self.statements += 1
        self._watchdog.arm()
        try:
            return self._execute_once(query, params, repeatable)
        except pg_errors.QueryCanceled as exc:
            if self._watchdog.fired:
                raise StatementTimeout("The database did not answer in time; try again shortly.") from exc
            raise
        except (pg_errors.UndefinedFunction, pg_errors.UndefinedTable) as exc:
            if "job_queue" not in str(exc):
                raise
            raise DatabaseNotMigrated(
                "The database has no job queue (or an older one): apply supabase/migrations"
                f" (python scripts/migrate.py). PostgreSQL said: {exc.diag.message_primary}"
            ) from exc
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable("The database connection failed; try again shortly.") from exc
        finally:
            self._watchdog.disarm()

    def _execute_once(self, query: LiteralString, params: Params, repeatable: bool) -> psycopg.Cursor[Row]:
        if self._may_replace() and _found_dead(self.conn):
            self._replace("found dead before sending")  # nothing was sent on the dead connection
        try:
            return self.conn.execute(query, params)
        except psycopg.OperationalError:
            if not (repeatable and self._may_replace() and self.conn.broken):
                raise
        # The statement may have run before the connection failed; its caller says
        # running it again is harmless.
        self._replace("failed after sending a repeatable statement")
        return self.conn.execute(query, params)

    def _may_replace(self) -> bool:
        return self._reopen is not None and self._transactions == 0

    def _replace(self, reason: str) -> None:
        assert self._reopen is not None
        with contextlib.suppress(Exception):
            self.conn.close()
        self.conn = self._reopen()
        self.reconnects += 1
        log("db.reconnected", "warning", reason=reason)

    def fetchall(self, query: LiteralString, params: Params = None, *, repeatable: bool = False) -> list[Row]:
        return self.execute(query, params, repeatable=repeatable).fetchall()

    def fetchone(self, query: LiteralString, params: Params = None, *, repeatable: bool = False) -> Row | None:
        return self.execute(query, params, repeatable=repeatable).fetchone()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group statements atomically (BEGIN/COMMIT are sent by psycopg). Nothing inside is re-sent."""
        if self._may_replace() and _found_dead(self.conn):
            self._replace("found dead before a transaction")
        self._transactions += 1
        try:
            with self.conn.transaction():
                yield
        finally:
            self._transactions -= 1

    def detach(self) -> psycopg.Connection[Row]:
        """Stop guarding statements and hand the connection over (to be kept or closed)."""
        self._watchdog.stop()
        return self.conn

    def close(self) -> None:
        self.detach().close()


def _found_dead(conn: psycopg.Connection[Row]) -> bool:
    """Whether an idle connection is known dead without a round trip.

    Between statements the server sends nothing on its own (the bundle never
    LISTENs), so a readable socket means it hung up: the end of the stream, often
    after a "terminating connection" error. Costs one poll, no round trip.
    """
    if conn.closed or conn.broken:
        return True
    if conn.info.transaction_status != TransactionStatus.IDLE:
        return False
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


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
    """The connection string, checked for what would otherwise read as "unreachable" or leak it.

    psycopg's parse errors quote the string, password included; the messages here
    name the variable and never show its value.
    """
    url = secret_value(settings.database_url)
    if not url:
        raise ConfigurationError("DATABASE_URL is not set: the bundle cannot reach its database.")
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        raise ConfigurationError(
            "DATABASE_URL is malformed: it is neither a postgresql:// URL nor key=value pairs"
            " (a password with special characters must be percent-encoded in a URL)."
        ) from None
    for port in str(parts.get("port") or "").split(","):
        if port and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
            raise ConfigurationError("DATABASE_URL is malformed: its port is not a number from 1 to 65535.")
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
    except psycopg.ProgrammingError:
        # An option libpq refuses (an unknown name, a bad sslmode): its message quotes the value.
        raise ConfigurationError("DATABASE_URL is malformed: libpq refused one of its options.") from None
    except psycopg.OperationalError as exc:
        if "invalid" in str(exc) and "value" in str(exc):  # e.g. invalid sslmode value: a setting, not an outage
            raise ConfigurationError("DATABASE_URL is malformed: libpq refused one of its values.") from None
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

    db = Database(kept or reopen(), settings.db_statement_timeout_seconds, reopen=reopen)
    try:
        yield db
    finally:
        _warm.give(conninfo, db.detach())


def close_kept_connections() -> None:
    """Close the connections kept for later invocations (tests, process shutdown)."""
    _warm.clear()
