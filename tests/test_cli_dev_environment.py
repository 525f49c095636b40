"""`python scripts/jobs.py` with nothing set works on the dev server's database and sandbox."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.devserver.database import DevDatabase, open_dev_database
from scripts.devserver.sandbox import start_sandbox
from scripts.devserver.secrets import load_local_secrets
from scripts.devserver.seed import ensure_demo_data
from tests.support.dev_server import dev_env

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dev_dir() -> Iterator[tuple[Path, DevDatabase]]:
    """A dev data folder as `make dev` leaves it: embedded database (kept running here), sandbox state, secrets.

    Outside pytest's own temporary folder: concurrent pytest sessions reset that
    folder's permissions, which an embedded server running as another user trips over.
    """
    data_dir = Path(tempfile.mkdtemp(prefix="jq-cli-dev-"))
    db = open_dev_database(data_dir, None)
    token = load_local_secrets(data_dir, environ={})["GAME_PLATFORM_API_TOKEN"].value
    sandbox = start_sandbox(token, data_dir)
    ensure_demo_data(db.conninfo, embedded=True, dataset=sandbox.dataset)
    sandbox.stop()
    try:
        yield data_dir, db
    finally:
        db.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def jobs(data_dir: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = dev_env(JOB_QUEUE_DEV_DIR=str(data_dir))
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "jobs.py"), "--json", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_with_nothing_set_it_uses_the_dev_database_and_a_sandbox_of_its_own(dev_dir) -> None:
    data_dir, _ = dev_dir
    enqueued = jobs(data_dir, "enqueue", "game_platform_sync")
    assert enqueued.returncode == 0, enqueued.stderr
    notes = [line for line in enqueued.stderr.splitlines() if line.startswith("jobs.py:")]
    assert len(notes) == 1
    assert f"using the dev database in {data_dir}" in notes[0]
    assert "SANDBOX Game Platform" in notes[0]

    ran = jobs(data_dir, "run", "--limit", "5")
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "started for this command" in ran.stderr
    [result] = json.loads(ran.stdout)["results"]
    assert (result["taskType"], result["status"], result["lastError"]) == ("game_platform_sync", "succeeded", None)


def test_it_uses_the_running_dev_servers_sandbox(dev_dir) -> None:
    data_dir, _ = dev_dir
    token = load_local_secrets(data_dir, environ={})["GAME_PLATFORM_API_TOKEN"].value
    sandbox = start_sandbox(token, data_dir)
    try:
        assert jobs(data_dir, "enqueue", "game_platform_sync", "--payload", '{"dryRun": true}').returncode == 0
        ran = jobs(data_dir, "run")
        assert ran.returncode == 0, ran.stderr[-3000:]
        assert f"at {sandbox.base_url} (the dev server's)" in ran.stderr
        assert sandbox.platform.requests_for("scores/get_odl_scores")
    finally:
        sandbox.stop()


def test_a_database_url_wins_over_the_dev_folder(dev_dir, clean_db: str) -> None:
    data_dir, _ = dev_dir
    env = {**dev_env(JOB_QUEUE_DEV_DIR=str(data_dir)), "DATABASE_URL": clean_db}
    status = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "jobs.py"), "--json", "status"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert status.returncode == 0, status.stderr
    assert "jobs.py: using the dev database" not in status.stderr
    assert os.environ.get("JOB_QUEUE_DEV_DIR") is None
