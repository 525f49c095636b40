"""`scripts/dev.py` as a newcomer runs it: a subprocess without the bundle's variables, its output collected."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEV = [sys.executable, str(ROOT / "scripts" / "dev.py")]
# What a newcomer's shell does not have: the dev server must do without every one.
BUNDLE_VARIABLES = (
    "DATABASE_URL",
    "POSTGRES_URL",
    "CRON_SECRET",
    "JOB_QUEUE_RUNNER_SECRET",
    "SUPABASE_JWT_SECRET",
    "SUPABASE_URL",
    "SUPABASE_ANON_KEY",
    "GAME_PLATFORM_API_BASE_URL",
    "GAME_PLATFORM_API_TOKEN",
    "SENTRY_DSN",
)


def dev_env(**values: str) -> dict[str, str]:
    """The environment of a newcomer's shell: none of the bundle's variables unless given."""
    env = {k: v for k, v in os.environ.items() if k not in BUNDLE_VARIABLES}
    env.update(values)
    return env


class DevProcess:
    """`scripts/dev.py --port 0 [args] --data-dir DIR` in the background, ready once it prints its URL."""

    def __init__(self, data_dir: Path, env: dict[str, str], *args: str, ready_timeout: float = 120) -> None:
        self.data_dir = data_dir
        self.proc = subprocess.Popen(
            [*DEV, "--port", "0", *args, "--data-dir", str(data_dir)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.base_url = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self.ready.wait(ready_timeout):
            self.close()
            raise AssertionError("dev server did not become ready:\n" + self.output[-4000:])

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith("ready: "):
                self.base_url = line.split(" ", 1)[1].strip()
                self.ready.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def stop(self, sig: signal.Signals) -> int:
        """Send `sig` and wait for the exit code (a server that does not stop fails the caller)."""
        self.proc.send_signal(sig)
        code = self.proc.wait(60)
        self._reader.join(5)
        return code

    def close(self) -> None:
        """Teardown: SIGTERM if still running, SIGKILL if that does not stop it within a minute."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
