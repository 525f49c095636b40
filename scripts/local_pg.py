"""PostgreSQL for tests, the dev server and the benchmarks.

`DATABASE_URL` names a server to use when set. Otherwise an embedded PostgreSQL
is started from PyPI's `pgserver` (a self-contained build, no system install).
Fresh databases are created on that server and migrated with `scripts.migrate`.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from lib.sql import load_queries
from scripts.migrate import apply_migrations

QUERIES = load_queries(__file__, "local_pg.sql")


def start_embedded(data_dir: Path, *, keep: bool) -> object:
    """Start (or join) an embedded PostgreSQL whose data lives in `data_dir`.

    `keep=False` deletes the data when the server stops; `keep=True` leaves it for
    the next start. Returns the pgserver handle; `.get_uri()` is its conninfo.
    """
    import pgserver  # dev dependency: imported only when an embedded server is wanted

    data_dir.mkdir(parents=True, exist_ok=True)
    return pgserver.get_server(data_dir, cleanup_mode="stop" if keep else "delete")


@contextmanager
def postgres_server(data_dir: Path | None = None) -> Iterator[str]:
    """Yield an admin conninfo: `DATABASE_URL`'s server, or an embedded one."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        yield url
        return
    # A short path: the server's Unix socket lives in the data folder, and socket
    # paths are limited to about 100 characters.
    keep = data_dir is not None
    directory = data_dir or Path(tempfile.mkdtemp(prefix="jqpg-"))
    server = start_embedded(directory, keep=keep)
    try:
        yield server.get_uri()  # type: ignore[attr-defined]
    finally:
        server.cleanup()  # type: ignore[attr-defined]


def database_conninfo(admin_conninfo: str, dbname: str) -> str:
    """The conninfo of another database on the same server."""
    return make_conninfo(admin_conninfo, dbname=dbname)


def create_database(admin_conninfo: str, prefix: str = "jobs") -> str:
    """Create an empty database with a unique name; return its conninfo."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(admin_conninfo, autocommit=True, prepare_threshold=None) as conn:
        conn.execute(sql.SQL(QUERIES["create_database"]).format(name=sql.Identifier(name)))
    return database_conninfo(admin_conninfo, name)


def drop_database(admin_conninfo: str, conninfo: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(conninfo)["dbname"]
    with psycopg.connect(admin_conninfo, autocommit=True, prepare_threshold=None) as conn:
        conn.execute(sql.SQL(QUERIES["drop_database"]).format(name=sql.Identifier(str(name))))


@contextmanager
def fresh_database(admin_conninfo: str, prefix: str = "jobs") -> Iterator[str]:
    """A new, fully migrated database, dropped afterwards."""
    conninfo = create_database(admin_conninfo, prefix)
    try:
        apply_migrations(conninfo)
        yield conninfo
    finally:
        drop_database(admin_conninfo, conninfo)
