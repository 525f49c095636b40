"""A throwaway PostgreSQL 15 cluster with pg_cron preloaded, for testing the Supabase schedules.

pg_cron only loads through `shared_preload_libraries` and only works in the one
database named by `cron.database_name`, so neither the embedded pgserver nor a
shared PostgreSQL service can run it. This module starts a private cluster
(own data folder, own port, loopback only, trust auth) from Debian's
`postgresql-15` + `postgresql-15-cron` packages. initdb refuses to run as root,
so as root the cluster runs as the `postgres` OS user.

CI: `python -m scripts.pg_cron_cluster start DIR` prints the cluster's admin URL
(for `PG_CRON_TEST_URL`); `python -m scripts.pg_cron_cluster stop DIR` stops it.
The pg_cron test starts one by itself when the URL is not given.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from scripts.local_pg import QUERIES

PG_BIN = Path(os.environ.get("PG_CRON_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_CRON_LIBRARY = PG_BIN.parent / "lib" / "pg_cron.so"
# pg_cron's own database in the cluster: the test drops and recreates it for a clean start.
CRON_DATABASE = "jq_cron"
SERVICE_USER = "postgres"


def unavailable_reason() -> str | None:
    """Why a pg_cron cluster cannot be started here, or None when it can."""
    if not (PG_BIN / "initdb").exists():
        return f"PostgreSQL 15 server binaries are missing ({PG_BIN}/initdb): apt-get install -y postgresql-15"
    if not PG_CRON_LIBRARY.exists():
        return f"pg_cron is not installed ({PG_CRON_LIBRARY}): apt-get install -y postgresql-15-cron"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVICE_USER)
        except KeyError:
            return f"running as root and there is no {SERVICE_USER!r} OS user for initdb"
    return None


def _as_service_user(command: list[str]) -> list[str]:
    """initdb and postgres refuse root: run them as the postgres user when we are root."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", SERVICE_USER, "--", *command]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class CronCluster:
    directory: Path  # holds data/, the server log and the socket
    port: int

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def log_file(self) -> Path:
        return self.directory / "server.log"

    @property
    def admin_url(self) -> str:
        """The maintenance database; pg_cron lives in CRON_DATABASE."""
        return f"postgresql://{SERVICE_USER}@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        """Stop the server (fast shutdown: no orphaned postgres processes) and delete its files."""
        if (self.data_dir / "postmaster.pid").exists():
            subprocess.run(
                _as_service_user([str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"]),
                check=False,
                capture_output=True,
            )
        shutil.rmtree(self.directory, ignore_errors=True)


def start_cluster(directory: Path, port: int | None = None) -> CronCluster:
    """initdb a new cluster in `directory` (created, must be empty) and start it with pg_cron."""
    reason = unavailable_reason()
    if reason:
        raise RuntimeError(reason)
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        raise RuntimeError(f"{directory} is not empty")
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SERVICE_USER)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
    cluster = CronCluster(directory=directory, port=port or _free_port())
    initdb = [
        str(PG_BIN / "initdb"),
        "-D",
        str(cluster.data_dir),
        "-U",
        SERVICE_USER,
        "--auth=trust",
        "--encoding=UTF8",
        "--no-sync",
    ]
    _run(initdb, "initdb")
    with (cluster.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write(
            "\n# pg_cron test cluster\n"
            "shared_preload_libraries = 'pg_cron'\n"
            f"cron.database_name = '{CRON_DATABASE}'\n"
            "listen_addresses = '127.0.0.1'\n"
            f"port = {cluster.port}\n"
            f"unix_socket_directories = '{directory}'\n"
            "fsync = off\n"
        )
    start = [str(PG_BIN / "pg_ctl"), "-D", str(cluster.data_dir), "-l", str(cluster.log_file), "-w", "start"]
    try:
        _run(start, "pg_ctl start")
    except RuntimeError as exc:
        log = cluster.log_file.read_text(errors="replace") if cluster.log_file.exists() else ""
        cluster.stop()
        raise RuntimeError(f"{exc}\n{log[-2000:]}") from None
    return cluster


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(_as_service_user(command), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")


def reset_cron_database(admin_url: str) -> str:
    """Drop and recreate the cluster's `cron.database_name`; return its conninfo.

    pg_cron's launcher is connected to that database, so the drop is forced; the
    launcher reconnects once the database exists again.
    """
    with psycopg.connect(admin_url, autocommit=True, prepare_threshold=None) as conn:
        row = conn.execute(QUERIES["cron_database_name"]).fetchone()
        name = row[0] if row else None
        if not name:
            raise RuntimeError(f"{admin_url} does not preload pg_cron (cron.database_name is unset)")
        if name == conn.info.dbname:
            raise RuntimeError("connect to a maintenance database, not to cron.database_name itself")
        conn.execute(sql.SQL(QUERIES["drop_database"]).format(name=sql.Identifier(name)))
        conn.execute(sql.SQL(QUERIES["create_database"]).format(name=sql.Identifier(name)))
    return make_conninfo(admin_url, dbname=name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="initdb and start a cluster in DIR; print its admin URL")
    start.add_argument("directory", type=Path)
    start.add_argument("--port", type=int)
    stop = sub.add_parser("stop", help="stop the cluster in DIR and delete DIR")
    stop.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    if args.command == "start":
        try:
            cluster = start_cluster(args.directory, args.port)
        except RuntimeError as exc:
            print(f"pg_cron cluster: {exc}", file=sys.stderr)
            return 1
        print(cluster.admin_url)
        return 0
    conf = args.directory / "data" / "postgresql.conf"
    port = 0
    if conf.exists():
        for line in conf.read_text(encoding="utf-8").splitlines():
            if line.startswith("port = "):
                port = int(line.split("=", 1)[1])
    CronCluster(directory=args.directory, port=port).stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
