"""The dev server's sandbox stays true: restarts serve the same vendor, so syncs after them change nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from lib.db import connect
from lib.settings import Settings
from scripts.devserver.sandbox import Sandbox, load_state, start_sandbox
from scripts.devserver.seed import ensure_demo_data
from scripts.local_pg import fresh_database
from tests.support.game_platform import DOMAIN_TABLES, drain_queue, enqueue, platform_settings

TOKEN = "sandbox-test-token"
# Every domain table but the run log, which gains one row per sync by design.
DATA_TABLES = ("profiles", *(t for t in DOMAIN_TABLES if t != "game_platform_sync_runs"))
T0 = 1_790_000_000.0  # the first start's clock; later restarts happen hours later


@pytest.fixture
def dev_database(admin_conninfo: str) -> Iterator[str]:
    """A database of its own, as the dev server's embedded one: migrated, seeded only by ensure_demo_data."""
    with fresh_database(admin_conninfo, prefix="jq_sandbox") as conninfo:
        yield conninfo


def _settings(conninfo: str, sandbox: Sandbox) -> Settings:
    return platform_settings(conninfo, sandbox.platform)


def _start_and_sync(data_dir: Path, conninfo: str, now: float) -> tuple[dict[str, int], list[dict[str, object]]]:
    """What one `make dev` start does with the sandbox and the demo data, then a sync and a sweep."""
    sandbox = start_sandbox(TOKEN, data_dir, now=now)
    try:
        ensure_demo_data(conninfo, embedded=True, dataset=sandbox.dataset)
        settings = _settings(conninfo, sandbox)
        with connect(settings) as db:
            enqueue(db, "game_platform_sync", {"dryRun": False, "coachId": None})
            enqueue(db, "game_platform_totals_sweep", {"dryRun": False, "coachId": None, "batchSize": 100})
            finished = drain_queue(db, settings)
    finally:
        sandbox.stop()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        counts = {t: conn.execute(f"select count(*) from {t}").fetchone()[0] for t in DATA_TABLES}
    return counts, finished


def test_five_restarts_leave_every_domain_table_as_the_first_sync_left_it(tmp_path: Path, dev_database: str) -> None:
    runs = [_start_and_sync(tmp_path, dev_database, T0 + restart * 3 * 3600) for restart in range(6)]
    first, *later = [counts for counts, _ in runs]
    assert first["game_platform_flash_ctf_events"] > 0
    assert first["game_platform_challenge_solves"] > 0
    assert first["team_members"] > 0
    for counts in later:
        assert counts == first
    for _, finished in runs:
        assert [row["status"] for row in finished] == ["succeeded", "succeeded"]


def test_team_assignments_made_by_the_sync_survive_a_restart(tmp_path: Path, dev_database: str) -> None:
    _, first = _start_and_sync(tmp_path, dev_database, T0)
    assert first[0]["output"]["teams"]["membersAssigned"] > 0
    _, second = _start_and_sync(tmp_path, dev_database, T0 + 3600)
    teams = second[0]["output"]["teams"]
    assert teams["membersAssigned"] == 0
    assert teams["membersAlreadyAssigned"] > 0
    assert load_state(tmp_path).assignments


def test_the_demo_data_is_anchored_to_the_first_start(tmp_path: Path) -> None:
    first = start_sandbox(TOKEN, tmp_path, now=T0)
    first_events = {(u, f.name, f.start_unix) for u, user in first.dataset.users.items() for f in user.flash_ctfs}
    first.stop()
    again = start_sandbox(TOKEN, tmp_path, now=T0 + 86400)
    again_events = {(u, f.name, f.start_unix) for u, user in again.dataset.users.items() for f in user.flash_ctfs}
    again.stop()
    assert first_events
    assert again_events == first_events
    assert json.loads((tmp_path / "sandbox.json").read_text())["anchorUnix"] == int(T0)


def test_simulated_solves_are_served_again_after_a_restart(tmp_path: Path) -> None:
    sandbox = start_sandbox(TOKEN, tmp_path, now=T0)
    user = sandbox.dataset.competitors()[0].syned_user_id
    before = len(sandbox.dataset.users[user].odl_solves)
    sandbox.platform.record_solve(user, int(T0) + 60, 100)
    solve_id = sandbox.dataset.users[user].odl_solves[-1].challenge_solve_id
    sandbox.stop()
    again = start_sandbox(TOKEN, tmp_path)
    again.stop()
    solves = again.dataset.users[user].odl_solves
    assert len(solves) == before + 1
    assert solves[-1].challenge_solve_id == solve_id


def test_the_sandbox_keeps_its_port_and_moves_only_when_it_is_taken(tmp_path: Path) -> None:
    first = start_sandbox(TOKEN, tmp_path, now=T0)
    url = first.base_url
    first.stop()
    again = start_sandbox(TOKEN, tmp_path)
    assert again.base_url == url
    # While it holds the port, another sandbox of the same folder must move and record where.
    moved = start_sandbox(TOKEN, tmp_path)
    try:
        assert moved.base_url != url
        assert load_state(tmp_path).port == moved.platform._server.server_address[1]  # type: ignore[union-attr]
    finally:
        moved.stop()
        again.stop()
