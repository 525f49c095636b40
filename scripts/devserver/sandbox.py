"""The sandbox Game Platform: the tests' fake vendor, serving demo data on loopback.

Used when GAME_PLATFORM_API_BASE_URL is unset, so a newcomer sees the sync and
the sweep do real work without vendor credentials. It is not MetaCTF: the dev
server says so wherever it mentions it. While the dev server runs, a sandbox
user solves a challenge every few minutes, so scheduled syncs find news.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

from tests.support.fake_game_platform import Dataset, FakeGamePlatform, demo_dataset

SANDBOX_LABEL = "SANDBOX Game Platform (fake vendor with demo data, not MetaCTF)"
DEMO_USERS = 24


@dataclass
class Sandbox:
    platform: FakeGamePlatform
    base_url: str
    _stop: threading.Event = field(default_factory=threading.Event)
    _activity: threading.Thread | None = None

    @property
    def dataset(self) -> Dataset:
        return self.platform.dataset

    @property
    def token(self) -> str:
        return self.platform.token

    def simulate_activity(self, every_seconds: float = 240.0, seed: int = 11) -> None:
        """Give a random sandbox competitor a new solve every `every_seconds`."""
        rng = random.Random(seed)
        competitors = [u.syned_user_id for u in self.dataset.competitors()]

        def loop() -> None:
            while not self._stop.wait(every_seconds):
                self.platform.add_solve(rng.choice(competitors), int(time.time()), points=rng.choice((50, 100, 200)))

        self._activity = threading.Thread(target=loop, name="sandbox-activity", daemon=True)
        self._activity.start()

    def stop(self) -> None:
        self._stop.set()
        if self._activity is not None:
            self._activity.join(2)
        self.platform.stop()


def start_sandbox(token: str, host: str = "127.0.0.1") -> Sandbox:
    """Serve a deterministic demo dataset on an ephemeral loopback port."""
    platform = FakeGamePlatform(demo_dataset(users=DEMO_USERS, coaches=2, team_size=4), token=token)
    base_url = platform.start(host, 0)
    return Sandbox(platform=platform, base_url=base_url)
