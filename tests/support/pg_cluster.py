"""A throwaway PostgreSQL cluster a test may stop and restart (the shared servers must never be).

Own data folder under /tmp, own free port, loopback only, trust auth, fsync off.
The binaries are Debian's PostgreSQL 15 when installed, else pgserver's own
build. initdb and postgres refuse root: as root the cluster runs as the
`postgres` OS user (modelled on scripts/pg_cron_cluster.py).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scripts.pg_cron_cluster import SERVICE_USER

DEBIAN_BIN = Path("/usr/lib/postgresql/15/bin")


def _bin_dir() -> Path:
    if (DEBIAN_BIN / "initdb").exists():
        return DEBIAN_BIN
    import pgserver._commands

    return Path(pgserver._commands.POSTGRES_BIN_PATH)


def _as_service_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", SERVICE_USER, "--", *command] if os.geteuid() == 0 else command


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = _free_port()
        self.bin = _bin_dir()

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def admin_url(self) -> str:
        return f"postgresql://{SERVICE_USER}@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        command = [str(self.bin / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.directory / "server.log"), *args]
        done = subprocess.run(_as_service_user(command), capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            log = (self.directory / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed: {done.stderr.strip()}\n{log}")

    def init(self) -> None:
        if os.geteuid() == 0:
            entry = pwd.getpwnam(SERVICE_USER)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        command = [str(self.bin / "initdb"), "-D", str(self.data_dir), "-U", SERVICE_USER, "--auth=trust", "--no-sync"]
        done = subprocess.run(_as_service_user(command), capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr.strip()}")
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(
                "\nlisten_addresses = '127.0.0.1'\n"
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.directory}'\n"
                "fsync = off\n"
            )

    def start(self) -> None:
        self._ctl("-w", "start")

    def restart(self) -> None:
        """Fast shutdown (open transactions roll back, connections are closed), then start again."""
        self._ctl("-w", "-m", "fast", "restart")

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._ctl("-w", "-m", "fast", "stop")


def unavailable_reason() -> str | None:
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVICE_USER)
        except KeyError:
            return f"running as root and there is no {SERVICE_USER!r} OS user for initdb"
    return None


@contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    # Directly under /tmp: the postgres OS user must reach it, and socket paths are short.
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="jq-cluster-")))
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(cluster.directory, ignore_errors=True)
