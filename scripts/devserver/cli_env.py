"""The operator CLI on the dev server's database and sandbox, with no variables to set.

`python scripts/jobs.py …` with no `DATABASE_URL` and a dev data folder
(`./.dev`, or `JOB_QUEUE_DEV_DIR`) holding an embedded database works on that
database — joining the embedded PostgreSQL the dev server runs, or starting it
for the command — and, unless `GAME_PLATFORM_API_BASE_URL` is set, on the
sandbox vendor with its token: the dev server's own when it is running, else
one started for the command from the same `.dev/sandbox.json`. So a job the CLI
runs sees what the dev server's worker would. It says so in one line on stderr.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEV_DIR_VARIABLE = "JOB_QUEUE_DEV_DIR"


def dev_data_dir(environ: dict[str, str] | os._Environ[str] = os.environ) -> Path:
    return Path(environ.get(DEV_DIR_VARIABLE, "").strip() or ROOT / ".dev")


def _listening(port: int, host: str = "127.0.0.1") -> bool:
    if not port:
        return False
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@contextlib.contextmanager
def dev_environment(report: Callable[[str], None] = _say) -> Iterator[bool]:
    """Point the bundle's variables at the dev database (and sandbox) when nothing else is configured.

    Yields whether it did. The variables it sets are removed again on exit.
    """
    database_given = any(os.environ.get(name, "").strip() for name in ("DATABASE_URL", "POSTGRES_URL"))
    data_dir = dev_data_dir()
    if database_given or not (data_dir / "pgdata").is_dir():
        yield False
        return

    from sandbox.game_platform import PREFIX
    from scripts.devserver.database import open_dev_database
    from scripts.devserver.sandbox import SANDBOX_LABEL, load_state, start_sandbox, state_path
    from scripts.devserver.secrets import load_local_secrets

    saved: dict[str, str | None] = {}
    with contextlib.ExitStack() as stack:
        with contextlib.redirect_stdout(sys.stderr):  # migration notices must not reach --json output
            db = open_dev_database(data_dir, None)
        stack.callback(db.stop)
        values = {"DATABASE_URL": db.conninfo}
        vendor = ""
        if not os.environ.get("GAME_PLATFORM_API_BASE_URL", "").strip() and state_path(data_dir).exists():
            token = load_local_secrets(data_dir)["GAME_PLATFORM_API_TOKEN"].value
            port = load_state(data_dir).port
            if _listening(port):
                url, whose = f"http://127.0.0.1:{port}{PREFIX}", "the dev server's"
            else:
                sandbox = start_sandbox(token, data_dir)
                stack.callback(sandbox.stop)
                url, whose = sandbox.base_url, "started for this command"
            values.update(GAME_PLATFORM_API_BASE_URL=url, GAME_PLATFORM_API_TOKEN=token)
            vendor = f" and the {SANDBOX_LABEL} at {url} ({whose})"
        for name, value in values.items():
            saved[name] = os.environ.get(name)
            os.environ[name] = value
        report(f"jobs.py: using the dev database in {data_dir}{vendor}; set DATABASE_URL to work on another.")
        try:
            yield True
        finally:
            for name, previous in saved.items():
                if previous is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = previous
