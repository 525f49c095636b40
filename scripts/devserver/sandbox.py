"""The sandbox Game Platform: the tests' fake vendor, serving demo data on loopback, the same after every restart.

Used when GAME_PLATFORM_API_BASE_URL is unset, so a newcomer sees the sync and
the sweep do real work without vendor credentials. It is not MetaCTF: the dev
server says so wherever it mentions it.

It stays true across restarts. `<data dir>/sandbox.json` keeps:
- `anchorUnix`: when the sandbox was first started. The demo data is generated
  from it (never from the current time), so its solves and flash-CTF events
  have the same timestamps — and the same ids — after a restart: a sync finds
  nothing new and the domain tables keep their row counts;
- `assignments`: the vendor's team assignments, saved after every change the
  sync makes, so members it assigned stay assigned;
- `solves`: the solves simulated while the dev server ran (a sandbox user solves
  a challenge every few minutes, so scheduled syncs find news), replayed in
  order on start;
- `port`: where it listens, picked free at the first start and kept, so the URL
  (and the CLI that reads it from here) stays the same.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.game_platform import Dataset, FakeGamePlatform, demo_dataset

SANDBOX_LABEL = "SANDBOX Game Platform (fake vendor with demo data, not MetaCTF)"
STATE_FILE = "sandbox.json"
DEMO_USERS = 24


@dataclass
class SandboxState:
    """What a sandbox must remember to serve the same vendor after a restart."""

    anchor_unix: int
    port: int = 0
    assignments: dict[str, str] | None = None  # None: the demo data's own
    solves: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "anchorUnix": self.anchor_unix,
            "port": self.port,
            "assignments": self.assignments,
            "solves": self.solves,
        }


def state_path(data_dir: Path) -> Path:
    return data_dir / STATE_FILE


def load_state(data_dir: Path, *, now: float | None = None) -> SandboxState:
    """The stored state, or a new one anchored at `now` (not yet written)."""
    path = state_path(data_dir)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return SandboxState(
            anchor_unix=int(raw["anchorUnix"]),
            port=int(raw.get("port") or 0),
            assignments=dict(raw["assignments"]) if raw.get("assignments") is not None else None,
            solves=list(raw.get("solves") or []),
        )
    except FileNotFoundError:
        pass
    except (ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(f"{path} is unreadable ({exc}); delete it to start the sandbox afresh") from None
    return SandboxState(anchor_unix=int(time.time() if now is None else now))


def save_state(data_dir: Path, state: SandboxState) -> None:
    """Write atomically: a reader never sees half a file."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = state_path(data_dir)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(state.to_json(), indent=1) + "\n", encoding="utf-8")
    temporary.replace(path)


def sandbox_dataset(state: SandboxState) -> Dataset:
    """The demo data of this state: generated from its anchor, then its recorded changes applied."""
    dataset = demo_dataset(users=DEMO_USERS, coaches=2, team_size=4, now_unix=state.anchor_unix)
    for solve in state.solves:  # replayed in order, so each gets the id it had
        made = dataset.solve(int(solve["timestamp"]), points=int(solve["points"]), category=str(solve["category"]))
        dataset.users[str(solve["user"])].odl_solves.append(made)
    if state.assignments is not None:
        dataset.assignments = dict(state.assignments)
    return dataset


class SandboxPlatform(FakeGamePlatform):
    """The fake vendor, saving what changes to `sandbox.json` as it changes."""

    def __init__(self, state: SandboxState, data_dir: Path, token: str) -> None:
        super().__init__(sandbox_dataset(state), token=token)
        self.state = state
        self.data_dir = data_dir
        self._saved_assignments = dict(self.dataset.assignments)

    def answer(self, *args: Any, **kwargs: Any) -> Any:
        """The fake's answer; then, if the request changed the team assignments, they are saved."""
        result = super().answer(*args, **kwargs)
        with self.lock:
            if self.dataset.assignments != self._saved_assignments:
                self._saved_assignments = dict(self.dataset.assignments)
                self.state.assignments = dict(self._saved_assignments)
                save_state(self.data_dir, self.state)
        return result

    def record_solve(self, syned_user_id: str, timestamp_unix: int, points: int, category: str = "web") -> None:
        """A new solve, served from now on and after every restart."""
        with self.lock:
            self.add_solve(syned_user_id, timestamp_unix, points=points, category=category)
            self.state.solves.append(
                {"user": syned_user_id, "timestamp": timestamp_unix, "points": points, "category": category}
            )
            save_state(self.data_dir, self.state)


@dataclass
class Sandbox:
    platform: SandboxPlatform
    base_url: str
    _stop: threading.Event = field(default_factory=threading.Event)
    _activity: threading.Thread | None = None

    @property
    def dataset(self) -> Dataset:
        return self.platform.dataset

    @property
    def token(self) -> str:
        return self.platform.token

    def simulate_activity(self, every_seconds: float = 240.0, seed: int | None = None) -> None:
        """Give a random sandbox competitor a new solve every `every_seconds`."""
        rng = random.Random(len(self.platform.state.solves) if seed is None else seed)
        competitors = [u.syned_user_id for u in self.dataset.competitors()]

        def loop() -> None:
            while not self._stop.wait(every_seconds):
                self.platform.record_solve(rng.choice(competitors), int(time.time()), rng.choice((50, 100, 200)))

        self._activity = threading.Thread(target=loop, name="sandbox-activity", daemon=True)
        self._activity.start()

    def stop(self) -> None:
        self._stop.set()
        if self._activity is not None:
            self._activity.join(2)
        self.platform.stop()


def start_sandbox(token: str, data_dir: Path, host: str = "127.0.0.1", *, now: float | None = None) -> Sandbox:
    """Serve the sandbox of `data_dir` (created on first use, anchored at `now`) on its recorded port, or a free one."""
    state = load_state(data_dir, now=now)
    platform = SandboxPlatform(state, data_dir, token)
    try:
        base_url = platform.start(host, state.port)
    except OSError:  # another program took the port since: pick a new one and remember it
        base_url = platform.start(host, 0)
    state.port = int(base_url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
    save_state(data_dir, state)
    return Sandbox(platform=platform, base_url=base_url)
