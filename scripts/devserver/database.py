"""The dev server's database: `DATABASE_URL` when set, else an embedded PostgreSQL in `.dev/`.

The embedded server (PyPI's pgserver) keeps its data in `<data dir>/pgdata`, so
jobs and demo data survive restarts. pgserver records each process holding the
server in `pgdata/.handle_pids.json` and stops the server only when the last
holder leaves; a holder killed without cleanup (SIGKILL, a crash) would stay
listed for ever and keep the next run from stopping the server, so dead pids
are pruned before joining.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from scripts.local_pg import QUERIES as LOCAL_PG_QUERIES
from scripts.migrate import Migration, apply_migrations

DEV_DATABASE = "jobqueue_dev"
HANDLE_PIDS = ".handle_pids.json"


@dataclass
class DevDatabase:
    conninfo: str
    embedded: bool
    created: bool  # the database was created by this run (only then is demo data seeded)
    applied: list[Migration] = field(default_factory=list)
    server: Any = None  # the pgserver handle, when embedded

    @property
    def description(self) -> str:
        if not self.embedded:
            return "DATABASE_URL (yours: never seeded)"
        return "embedded PostgreSQL" + (" (created now)" if self.created else " (kept from the last run)")

    def stop(self) -> None:
        """Stop the embedded server if this process is its last holder (pg_ctl stop, then the pid is unlisted)."""
        if self.server is not None:
            self.server.cleanup()
            self.server = None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prune_dead_holders(pgdata: Path) -> list[int]:
    """Drop pids of processes that no longer exist from pgserver's holder list; return them."""
    path = pgdata / HANDLE_PIDS
    if not path.exists():
        return []
    try:
        pids = [int(p) for p in json.loads(path.read_text() or "[]")]
    except (ValueError, TypeError):
        path.unlink()
        return []
    dead = [p for p in pids if not _pid_alive(p)]
    if dead:
        path.write_text(json.dumps([p for p in pids if p not in dead]))
    return dead


def start_embedded_server(data_dir: Path) -> Any:
    """Start (or join) the embedded server whose data lives in `data_dir/pgdata`."""
    import warnings

    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); pgserver copes.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    import pgserver  # dev dependency, needed only without DATABASE_URL

    pgdata = data_dir.resolve() / "pgdata"
    data_dir.mkdir(parents=True, exist_ok=True)
    if pgdata.exists():
        prune_dead_holders(pgdata)
    return pgserver.get_server(pgdata, cleanup_mode="stop")


def ensure_database(admin_conninfo: str, name: str) -> bool:
    """Create database `name` unless it exists; return whether it was created now."""
    with psycopg.connect(admin_conninfo, autocommit=True, prepare_threshold=None) as conn:
        if conn.execute(LOCAL_PG_QUERIES["database_exists"], {"name": name}).fetchone():
            return False
        conn.execute(sql.SQL(LOCAL_PG_QUERIES["create_database"]).format(name=sql.Identifier(name)))
    return True


def open_dev_database(data_dir: Path, database_url: str | None) -> DevDatabase:
    """The database to serve from, migrated with scripts/migrate.py's code."""
    if database_url:
        db = DevDatabase(conninfo=database_url, embedded=False, created=False)
    else:
        server = start_embedded_server(data_dir)
        try:
            admin = server.get_uri()
            created = ensure_database(admin, DEV_DATABASE)
            db = DevDatabase(make_conninfo(admin, dbname=DEV_DATABASE), embedded=True, created=created, server=server)
        except BaseException:
            server.cleanup()
            raise
    try:
        db.applied = apply_migrations(db.conninfo)
    except BaseException:
        db.stop()
        raise
    return db
