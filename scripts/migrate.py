"""Apply `supabase/migrations/*.sql` to the database at `DATABASE_URL`.

Each file is applied once, in name order, inside its own transaction, and
recorded in `supabase_migrations.schema_migrations` — the table the Supabase CLI
keeps — so a database migrated by `supabase db push` is not migrated twice and
running this script again is harmless.

On plain PostgreSQL it first creates what Supabase provides and the migrations
expect (the roles `anon`, `authenticated`, `service_role` and the schema `auth`),
each only where missing. Tests, the dev server and the benchmarks set up their
databases with this same code.

The files are append-only (docs/migrations.md): a file once applied is never
edited or renamed; a change is a new file. A database whose record names a
different file under one of our versions was migrated with a history that no
longer exists (the fold of 2026-12-02); it is refused, saying so, rather than
half-migrated.

Usage: DATABASE_URL=postgresql://... python scripts/migrate.py [--list]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg

if __package__ in (None, ""):  # run as `python scripts/migrate.py`: make `lib` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lib.sql import load_queries

QUERIES = load_queries(__file__, "migrate.sql")
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "supabase" / "migrations"

# A fixed key for pg_advisory_xact_lock, so concurrent migrators take turns.
_MIGRATION_LOCK_KEY = 7_310_512_000_001


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


# NOTICEs that only say an `if not exists` found the object there (or that a long
# name was truncated): on an adopted database there are dozens, and they drown
# out the notices that say something.
_QUIET_SQLSTATES = frozenset({"42P06", "42P07", "42701", "42710", "42622"})


def _print_notice(notice: psycopg.errors.Diagnostic) -> None:
    if notice.sqlstate not in _QUIET_SQLSTATES:
        print(f"  notice: {notice.message_primary}")


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in the order they apply (Supabase CLI: `<version>_<name>.sql`)."""
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        version, _, name = path.stem.partition("_")
        if not version.isdigit() or not name:
            raise SystemExit(f"{path.name}: migration files are named <timestamp>_<name>.sql")
        migrations.append(Migration(version=version, name=name, path=path))
    return migrations


def ensure_supabase_compatibility(conn: psycopg.Connection) -> None:
    """Create the Supabase roles and schemas the migrations expect, where missing."""
    with conn.transaction():
        conn.execute(QUERIES["lock"], {"key": _MIGRATION_LOCK_KEY})
        conn.execute(QUERIES["supabase_compatibility"].encode())  # bytes: a script, no client-side placeholders


class MigrationHistoryError(Exception):
    """The database records a migration of ours under another name: its history was rewritten since."""


def applied_versions(conn: psycopg.Connection) -> set[str]:
    rows = conn.execute(QUERIES["applied_versions"]).fetchall()
    return {row[0] for row in rows}


def check_history(conn: psycopg.Connection, migrations: Sequence[Migration]) -> None:
    """Refuse a database that recorded one of these versions under another file name.

    Versions we do not have (the app's own migrations, kept in the same table by
    the Supabase CLI) and records without a name are left alone.
    """
    recorded = dict(conn.execute(QUERIES["recorded_migrations"]).fetchall())
    renamed = [
        f"{m.version}: applied as {recorded[m.version]!r}, now {m.name!r}"
        for m in migrations
        if recorded.get(m.version) not in (None, m.name)
    ]
    if renamed:
        raise MigrationHistoryError(
            "this database was migrated with migration files that no longer exist ("
            + "; ".join(renamed)
            + "). Recreate it (a dev or test database), or see docs/migrations.md."
        )


def apply_migrations(
    conninfo: str,
    migrations: Sequence[Migration] | None = None,
    *,
    log: bool = False,
) -> list[Migration]:
    """Apply every migration not yet recorded; return the ones applied now."""
    migrations = discover() if migrations is None else migrations
    applied: list[Migration] = []
    with psycopg.connect(conninfo, autocommit=True, prepare_threshold=None) as conn:
        if log:
            # A migration speaks through NOTICEs (e.g. "pg_cron is not installed: nothing scheduled",
            # or what adopting an existing database converted).
            conn.add_notice_handler(_print_notice)
        ensure_supabase_compatibility(conn)
        check_history(conn, migrations)
        for migration in migrations:
            with conn.transaction():
                conn.execute(QUERIES["lock"], {"key": _MIGRATION_LOCK_KEY})
                if migration.version in applied_versions(conn):
                    continue
                conn.execute(migration.sql.encode())  # bytes: no client-side placeholders
                conn.execute(QUERIES["record_migration"], {"version": migration.version, "name": migration.name})
            applied.append(migration)
            if log:
                print(f"applied {migration.path.name}")
    return applied


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="show each migration and whether it is applied")
    args = parser.parse_args(argv)
    conninfo = os.environ.get("DATABASE_URL", "").strip()
    if not conninfo:
        print("DATABASE_URL is not set: point it at the database to migrate.", file=sys.stderr)
        return 2
    try:
        if args.list:
            with psycopg.connect(conninfo, autocommit=True, prepare_threshold=None) as conn:
                ensure_supabase_compatibility(conn)
                done = applied_versions(conn)
            for m in discover():
                print(f"{'applied' if m.version in done else 'pending'}  {m.path.name}")
            return 0
        applied = apply_migrations(conninfo, log=True)
    except (psycopg.Error, MigrationHistoryError) as exc:
        print(f"migration failed: {exc}", file=sys.stderr)
        return 1
    print(f"{len(applied)} migration(s) applied; database is up to date.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
