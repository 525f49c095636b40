"""Fixtures shared by the Game Platform handler tests (registered in tests/conftest.py).

`fake` is the fake vendor serving a small deterministic demo; `settings` points
the bundle at it and at the test database. A test module may define its own
`fake` (another dataset) and the shared `settings` follows it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lib.settings import Settings
from sandbox.game_platform import FakeGamePlatform, demo_dataset
from tests.support.game_platform import platform_settings


@pytest.fixture
def fake() -> Iterator[FakeGamePlatform]:
    with FakeGamePlatform(demo_dataset(12, coaches=2, team_size=3)) as platform:
        yield platform


@pytest.fixture
def settings(clean_db: str, fake: FakeGamePlatform) -> Settings:
    return platform_settings(clean_db, fake, GAME_PLATFORM_RETRY_BASE_SECONDS="0.05")
