"""A throwaway PgBouncer in transaction mode, so CI runs the suite the way production connects.

Supabase's pooler (and the README's deployment) puts PgBouncer/Supavisor in
transaction mode between the functions and PostgreSQL: each transaction may land
on another server connection. This starts Debian's `pgbouncer` with its own
config in DIR, on a free loopback port, trusting every user, pooling every
database name onto `host:port` (the machine's PostgreSQL 15 by default).
PgBouncer refuses to run as root, so as root it runs as the `postgres` OS user.

CI: `python -m scripts.pgbouncer_pool start DIR` prints the pooled admin URL (for
`DATABASE_URL`); `python -m scripts.pgbouncer_pool stop DIR` stops it and deletes DIR.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
SERVICE_USER = "postgres"
# The suite opens a few connections per test plus the worker's; far more than
# that would mean a leak, which the pooler then makes visible as a wait.
MAX_CLIENT_CONNECTIONS = 2000
SERVER_POOL_SIZE = 20


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(directory: Path, port: int, server_host: str, server_port: int) -> str:
    return f"""\
[databases]
* = host={server_host} port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory}/userlist.txt
pool_mode = transaction
max_client_conn = {MAX_CLIENT_CONNECTIONS}
default_pool_size = {SERVER_POOL_SIZE}
max_db_connections = {SERVER_POOL_SIZE * 2}
ignore_startup_parameters = extra_float_digits
logfile = {directory}/pgbouncer.log
pidfile = {directory}/pgbouncer.pid
"""


def start_pool(directory: Path, server_host: str = "127.0.0.1", server_port: int = 5432) -> str:
    """Start PgBouncer with its config in `directory` (created); return the pooled admin URL."""
    if not Path(PGBOUNCER).exists():
        raise RuntimeError("pgbouncer is not installed: apt-get install -y pgbouncer")
    directory.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    (directory / "pgbouncer.ini").write_text(_config(directory, port, server_host, server_port), encoding="utf-8")
    # trust still looks the user up in auth_file.
    (directory / "userlist.txt").write_text(f'"{SERVICE_USER}" ""\n', encoding="utf-8")
    command = [PGBOUNCER, "-d", str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SERVICE_USER)
        for path in (directory, *directory.iterdir()):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        command = [PGBOUNCER, "-d", "-u", SERVICE_USER, str(directory / "pgbouncer.ini")]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pgbouncer failed to start: {done.stderr.strip() or done.stdout.strip()}")
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return f"postgresql://{SERVICE_USER}@127.0.0.1:{port}/postgres"
        except OSError:
            time.sleep(0.05)
    log = (directory / "pgbouncer.log").read_text(errors="replace") if (directory / "pgbouncer.log").exists() else ""
    stop_pool(directory)
    raise RuntimeError(f"pgbouncer did not listen on port {port}\n{log[-2000:]}")


def stop_pool(directory: Path) -> None:
    """Stop the PgBouncer whose pidfile is in `directory`, then delete `directory`."""
    pidfile = directory / "pgbouncer.pid"
    if pidfile.exists():
        try:
            pid = int(pidfile.read_text().strip())
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.05)
        except (ValueError, ProcessLookupError):
            pass
    shutil.rmtree(directory, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start PgBouncer with its files in DIR; print the pooled admin URL")
    start.add_argument("directory", type=Path)
    start.add_argument("--server-port", type=int, default=5432)
    stop = sub.add_parser("stop", help="stop the PgBouncer in DIR and delete DIR")
    stop.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    if args.command == "start":
        try:
            print(start_pool(args.directory, server_port=args.server_port))
        except RuntimeError as exc:
            print(f"pgbouncer: {exc}", file=sys.stderr)
            return 1
        return 0
    stop_pool(args.directory)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
