"""A fake Game Platform (MetaCTF's SynEd integration API) served over real HTTP.

Written from the vendor's OpenAPI schemas (`/integrations/syned/v1`: users,
teams, team assignments, ODL scores, flash-CTF progress), with FastAPI's error
shapes (`{"detail": ...}`, 422 lists of field errors) and bearer auth. The
tests, the benchmarks, the Vercel check and the local dev server
(`scripts/dev.py`, as a sandbox vendor with demo data) all use it. Standard
library only, plus `scripts.local_http` for its server.

Public API::

    from sandbox.game_platform import FakeGamePlatform, Fault, demo_dataset

    fake = FakeGamePlatform(demo_dataset(users=40), token="dev-token", latency=0.0)
    base_url = fake.start("127.0.0.1", 0)   # -> "http://127.0.0.1:<port>/integrations/syned/v1"
    # point the bundle at it: GAME_PLATFORM_API_BASE_URL=base_url, GAME_PLATFORM_API_TOKEN=fake.token
    fake.stop()

- Data: a `Dataset` of `FakeUser`s (each with ODL `Solve`s and `FlashCtfResult`s),
  `FakeTeam`s and assignments (user → team). `dataset.local_rows()` gives the
  matching app-database rows (profiles for coaches, competitors, teams, team
  members; ids are `local_id(platform_id)`). `demo_dataset()` builds a
  deterministic one; `Dataset()` plus `add_user`/`add_team`/`assign` builds your
  own. Change data while serving with `fake.add_solve`, `fake.add_flash_ctf`, or
  any mutation inside `with fake.lock:`. Solve timestamps are real, so
  `after_time_unix` filters as the vendor does (solves strictly after it);
  totals always cover every solve.
- Faults: `fake.inject(Fault(...))` answers matching requests with a status
  (404 unknown user, 429 with `Retry-After`, 500, 422 with a `detail`), after a
  delay (slow responses), or by dropping the connection; `times=n` limits a
  fault to its first n matches (500-then-success) and `skip=n` lets n through
  first (a vendor failing mid-run). `fake.latency` delays every
  answer (the benchmark uses 50 ms).
- The vendor as it really behaves (seen by the original app in production):
  a user whose `status` is `pending_approval` or `denied` gets 403 on both
  score endpoints; a user with `flash_progress=False` gets 404 on flash-CTF
  progress alone; `fake.change_solve` corrects a solve (title, points, …);
  `fake.repeat_solve` lists a solve a second time, changed, in the same ODL
  answer; a user's `omit` names fields left out of every object of their score
  answers (`challenge_solves`, `last_accessed_unix_timestamp`,
  `max_points_possible`, …); the platform's `assignments` may list users the
  local roster no longer has, which `POST /users/delete_assignment` removes.
- Requests: every request is recorded (`fake.requests`, `fake.requests_for(path,
  user=...)`) with its method, path (relative to the base URL), query, JSON
  body and the status answered, so tests can assert what was asked.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from scripts.local_http import LocalHTTPServer

PREFIX = "/integrations/syned/v1"
DEFAULT_TOKEN = "fake-game-platform-token"  # noqa: S105 - the fake vendor's own token, guards nothing
DIVISIONS = ("high_school", "middle_school", "college")


# -- data ------------------------------------------------------------------------


@dataclass
class Solve:
    """One challenge solve (the schema's `ChallengeSolve`)."""

    challenge_solve_id: int
    challenge_id: int
    timestamp_unix: int
    points: int = 100
    category: str = "web"
    title: str = ""
    retired: bool = False
    nist_roles: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "challenge_solve_id": self.challenge_solve_id,
            "challenge_id": self.challenge_id,
            "challenge_title": self.title or f"Challenge {self.challenge_id}",
            "challenge_points": self.points,
            "challenge_category": self.category,
            "timestamp_unix": self.timestamp_unix,
            "challenge_retired": self.retired,
            "nist_nice_work_roles": list(self.nist_roles),
        }


@dataclass
class FlashCtfResult:
    """A user's result in one flash CTF (the schema's `FlashCTFProgressItem`)."""

    name: str
    start_unix: int
    solves: list[Solve] = field(default_factory=list)
    rank: int = 1
    max_points: int = 1000

    def to_json(self) -> dict[str, Any]:
        return {
            "flash_ctf_name": self.name,
            "flash_ctf_time_start_unix": self.start_unix,
            "challenges_solved": len(self.solves),
            "challenge_solves": [s.to_json() for s in self.solves],
            "points_earned": sum(s.points for s in self.solves),
            "max_points_possible": self.max_points,
            "rank": self.rank,
        }


@dataclass
class FakeUser:
    syned_user_id: str
    first_name: str = "Test"
    last_name: str = "User"
    email: str = ""
    role: str = "user"  # "user" | "coach"
    metactf_user_id: int = 0
    status: str = "approved"
    odl_solves: list[Solve] = field(default_factory=list)
    flash_ctfs: list[FlashCtfResult] = field(default_factory=list)
    last_accessed_unix: int = 0  # reported as at least the latest solve: solving is accessing
    last_login_unix: int | None = None
    coach_syned_user_id: str | None = None
    flash_progress: bool = True  # False: 404 on flash-CTF progress alone, as the vendor does for some users
    omit: frozenset[str] = frozenset()  # field names left out of every object of this user's score answers
    # Solves listed a second time at the end of the ODL answer, same id, changed content (the vendor does this).
    repeated_solves: list[Solve] = field(default_factory=list)

    @property
    def scores_refused(self) -> bool:
        """The vendor answers 403 on the scores of a user it has not approved."""
        return self.status in ("pending_approval", "denied")

    def last_accessed(self) -> int:
        stamps = [s.timestamp_unix for s in self.odl_solves]
        stamps += [s.timestamp_unix for f in self.flash_ctfs for s in f.solves]
        return max([self.last_accessed_unix, *stamps])

    def odl_json(self, after_time_unix: int | None) -> dict[str, Any]:
        solves = [s for s in self.odl_solves if after_time_unix is None or s.timestamp_unix > after_time_unix]
        solves.sort(key=lambda s: s.timestamp_unix)
        solves += [s for s in self.repeated_solves if after_time_unix is None or s.timestamp_unix > after_time_unix]
        categories: dict[str, int] = {}
        for s in self.odl_solves:
            categories[s.category] = categories.get(s.category, 0) + s.points
        return self._omitting(
            {
                "syned_user_id": self.syned_user_id,
                "metactf_user_id": self.metactf_user_id,
                "total_challenges_solved": len(self.odl_solves),
                "total_points": sum(s.points for s in self.odl_solves),
                "last_accessed_unix_timestamp": self.last_accessed(),
                "category_points": categories,
                "challenge_solves": [s.to_json() for s in solves],
            }
        )

    def flash_json(self) -> dict[str, Any]:
        items = [f.to_json() for f in sorted(self.flash_ctfs, key=lambda f: f.start_unix)]
        return self._omitting({"syned_user_id": self.syned_user_id, "flash_ctfs": items})

    def _omitting(self, answer: dict[str, Any]) -> dict[str, Any]:
        """`answer` less the fields this user's answers leave out, at every depth."""
        return {k: _without(v, self.omit) for k, v in answer.items() if k not in self.omit}

    def user_json(self) -> dict[str, Any]:
        return {
            "metactf_user_id": self.metactf_user_id,
            "metactf_username": f"{self.first_name}{self.last_name}{self.metactf_user_id}".lower(),
            "syned_user_id": self.syned_user_id,
            "last_login_unix_timestamp": self.last_login_unix,
            "metactf_user_status": self.status,
        }


def _without(value: Any, names: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: _without(v, names) for k, v in value.items() if k not in names}
    if isinstance(value, list):
        return [_without(v, names) for v in value]
    return value


@dataclass
class FakeTeam:
    syned_team_id: str
    name: str = "Team"
    affiliation: str = "Test High School"
    division: str = "high_school"
    coach_syned_user_id: str = ""
    metactf_team_id: int = 0
    # Who is on the team in *our* app (its local roster). What the platform
    # knows is `Dataset.assignments`; the difference is what a roster sync assigns.
    members: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "metactf_team_id": self.metactf_team_id,
            "metactf_coach_id": self.coach_syned_user_id,
            "syned_team_id": self.syned_team_id,
            "team_name": self.name,
            "division": self.division,
            "affiliation": self.affiliation,
        }


@dataclass
class Dataset:
    """Everything the fake vendor knows. Mutate it only under `FakeGamePlatform.lock` while serving."""

    users: dict[str, FakeUser] = field(default_factory=dict)
    teams: dict[str, FakeTeam] = field(default_factory=dict)
    assignments: dict[str, str] = field(default_factory=dict)  # syned_user_id -> syned_team_id
    _next_id: int = 1000

    def next_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def add_user(self, user: FakeUser) -> FakeUser:
        if not user.metactf_user_id:
            user.metactf_user_id = self.next_id()
        if not user.email:
            user.email = f"{user.syned_user_id}@example.test"
        self.users[user.syned_user_id] = user
        return user

    def add_team(self, team: FakeTeam) -> FakeTeam:
        if not team.metactf_team_id:
            team.metactf_team_id = self.next_id()
        self.teams[team.syned_team_id] = team
        return team

    def assign(self, syned_user_id: str, syned_team_id: str) -> None:
        self.assignments[syned_user_id] = syned_team_id

    def solve(self, timestamp_unix: int, *, points: int = 100, category: str = "web") -> Solve:
        """A new solve with a fresh, dataset-unique id."""
        solve_id = self.next_id()
        return Solve(
            solve_id, challenge_id=solve_id % 997 + 1, timestamp_unix=timestamp_unix, points=points, category=category
        )

    def competitors(self) -> list[FakeUser]:
        """The users that are competitors (not coaches), in id order."""
        return [u for _, u in sorted(self.users.items()) if u.role == "user"]

    def local_rows(self) -> dict[str, list[dict[str, Any]]]:
        """Rows for an app database mirroring this dataset, keyed by table.

        `profiles` (the coaches), `competitors`, `teams` (linked to the platform)
        and `team_members` (each team's local roster). Ids are `local_id()` of the
        platform id, so the same dataset always seeds the same rows.
        """
        coaches = [u for _, u in sorted(self.users.items()) if u.role == "coach"]
        return {
            "profiles": [
                {
                    "id": local_id(c.syned_user_id),
                    "role": "coach",
                    "is_approved": True,
                    "first_name": c.first_name,
                    "last_name": c.last_name,
                    "email": c.email,
                    "game_platform_user_id": c.syned_user_id,
                }
                for c in coaches
            ],
            "competitors": [
                {
                    "id": local_id(u.syned_user_id),
                    "coach_id": local_id(u.coach_syned_user_id) if u.coach_syned_user_id else None,
                    "first_name": u.first_name,
                    "last_name": u.last_name,
                    "email": u.email,
                    "game_platform_id": u.syned_user_id,
                }
                for u in self.competitors()
            ],
            "teams": [
                {
                    "id": local_id(t.syned_team_id),
                    "coach_id": local_id(t.coach_syned_user_id) if t.coach_syned_user_id else None,
                    "name": t.name,
                    "division": t.division,
                    "affiliation": t.affiliation,
                    "game_platform_id": t.syned_team_id,
                }
                for _, t in sorted(self.teams.items())
            ],
            "team_members": [
                {"team_id": local_id(t.syned_team_id), "competitor_id": local_id(uid)}
                for _, t in sorted(self.teams.items())
                for uid in t.members
            ],
        }


LOCAL_ID_NAMESPACE = uuid.UUID("6f1c2d3e-4b5a-5c6d-8e7f-90a1b2c3d4e5")


def local_id(platform_id: str) -> uuid.UUID:
    """The local uuid of a platform id in `Dataset.local_rows()`: stable across runs."""
    return uuid.uuid5(LOCAL_ID_NAMESPACE, platform_id)


FLASH_CTF_NAMES = (
    "Flash CTF: Cipher Sprint",
    "Flash CTF: Packet Hunt",
    "Flash CTF: Binary Blitz",
    "Flash CTF: Web Rush",
)
CATEGORIES = ("web", "crypto", "forensics", "binary", "osint", "reversing")
FIRST_NAMES = ("Ada", "Grace", "Alan", "Katherine", "Linus", "Margaret", "Dennis", "Radia", "Ken", "Frances")
LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Johnson", "Torvalds", "Hamilton", "Ritchie", "Perlman", "Thompson")


def demo_dataset(
    users: int = 40,
    *,
    coaches: int = 2,
    team_size: int = 4,
    flash_ctfs: int = 3,
    solves_per_user: tuple[int, int] = (0, 12),
    seed: int = 7,
    now_unix: int | None = None,
) -> Dataset:
    """A deterministic dataset (same arguments, same data) whose history ends an hour before `now_unix`.

    Users are `syned-user-0001`…, coaches `syned-coach-01`…; users are dealt to
    coaches in turn and grouped into teams of `team_size` per coach
    (`syned-team-001`…); in each team the first half is already assigned on the
    platform, so a roster sync has members left to assign. Flash CTFs were held
    monthly; about two users in three took part in each.
    """
    rng = random.Random(seed)  # noqa: S311 - deterministic demo data, not cryptography
    now = int(time.time()) if now_unix is None else now_unix
    history_end = now - 3600
    data = Dataset()
    coach_ids = [f"syned-coach-{c + 1:02d}" for c in range(max(coaches, 1))]
    for index, coach_id in enumerate(coach_ids):
        data.add_user(
            FakeUser(coach_id, first_name="Coach", last_name=LAST_NAMES[index % len(LAST_NAMES)], role="coach")
        )
    events = [
        (FLASH_CTF_NAMES[e % len(FLASH_CTF_NAMES)], history_end - (e + 1) * 30 * 86400) for e in range(flash_ctfs)
    ]
    by_coach: dict[str, list[str]] = {c: [] for c in coach_ids}
    for i in range(users):
        uid = f"syned-user-{i + 1:04d}"
        coach_id = coach_ids[i % len(coach_ids)]
        user = data.add_user(
            FakeUser(
                uid,
                first_name=FIRST_NAMES[i % len(FIRST_NAMES)],
                last_name=LAST_NAMES[(i // len(FIRST_NAMES)) % len(LAST_NAMES)],
                coach_syned_user_id=coach_id,
            )
        )
        for _ in range(rng.randint(*solves_per_user)):
            ts = history_end - rng.randint(0, 120 * 86400)
            user.odl_solves.append(
                data.solve(ts, points=rng.choice((50, 100, 150, 200, 300)), category=rng.choice(CATEGORIES))
            )
        for name, start in events:
            if rng.random() < 2 / 3:
                solved = [
                    data.solve(start + rng.randint(60, 7200), points=rng.choice((100, 200)), category="flash")
                    for _ in range(rng.randint(0, 5))
                ]
                user.flash_ctfs.append(FlashCtfResult(name, start, solved, rank=rng.randint(1, 500)))
        user.last_accessed_unix = max([s.timestamp_unix for s in user.odl_solves] + [history_end - 86400 * 150])
        user.last_login_unix = user.last_accessed_unix
        by_coach[coach_id].append(uid)
    team_number = 0
    for coach_id, members in by_coach.items():
        for start in range(0, len(members), team_size):
            team_number += 1
            team = data.add_team(
                FakeTeam(
                    f"syned-team-{team_number:03d}",
                    name=f"Team {team_number}",
                    affiliation=f"School {coach_id[-2:]}",
                    division=DIVISIONS[team_number % len(DIVISIONS)],
                    coach_syned_user_id=coach_id,
                )
            )
            group = members[start : start + team_size]
            team.members = list(group)
            for uid in group[: len(group) // 2]:
                data.assign(uid, team.syned_team_id)
    return data


# -- faults and recorded requests ------------------------------------------------


@dataclass
class Fault:
    """How to misanswer matching requests. `status=None` answers normally (after `delay`)."""

    status: int | None = None
    path: str | None = None  # relative to the base URL, e.g. "scores/get_odl_scores"; None: any path
    user: str | None = None  # the request's syned_user_id (query or body); None: any
    team: str | None = None  # the request's syned_team_id; None: any
    times: int | None = None  # affect only the first n matches; None: all of them
    skip: int = 0  # let the first n matches through untouched (a vendor that fails mid-run)
    retry_after: str | None = None  # Retry-After header value
    detail: Any = None  # the `detail` of the error body
    delay: float = 0.0  # seconds to wait before answering (slow responses)
    disconnect: bool = False  # drop the connection without answering (a network error)
    hits: int = 0  # matching requests this fault answered
    passed: int = 0  # matching requests let through by `skip`

    def matches(self, path: str, user: str | None, team: str | None) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        return (
            (self.path is None or self.path == path)
            and (self.user is None or self.user == user)
            and (self.team is None or self.team == team)
        )


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # relative to the base URL, without query
    query: dict[str, str]
    body: Any
    status: int  # what the fake answered (0: connection dropped)
    at: float  # time.monotonic() when received

    @property
    def user(self) -> str | None:
        value = self.query.get("syned_user_id")
        if value is None and isinstance(self.body, dict):
            value = self.body.get("syned_user_id")
        return value


class _Answer(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _missing(loc: str, name: str) -> dict[str, Any]:
    return {"loc": [loc, name], "msg": "Field required", "type": "missing"}


# -- the server ------------------------------------------------------------------


class FakeGamePlatform:
    """The fake vendor. `start()` serves it on a background thread; `stop()` shuts it down."""

    def __init__(self, dataset: Dataset | None = None, *, token: str = DEFAULT_TOKEN, latency: float = 0.0) -> None:
        self.dataset = dataset if dataset is not None else Dataset()
        self.token = token
        self.latency = latency
        self.lock = threading.RLock()
        self.faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []
        self._server: LocalHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # -- lifecycle ---------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in a background thread; return the base URL (the vendor's, with `/integrations/syned/v1`)."""
        if self._server is not None:
            return self.base_url
        fake = self

        class Handler(_FakeHandler):
            platform = fake

        server = _QuietServer((host, port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="fake-game-platform", daemon=True
        )
        self._thread.start()
        bound_host, bound_port = server.server_address[:2]
        host_text = bound_host.decode() if isinstance(bound_host, bytes) else str(bound_host)
        self.base_url = f"http://{host_text}:{bound_port}{PREFIX}"
        return self.base_url

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeGamePlatform:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- test helpers ------------------------------------------------------------

    def inject(self, fault: Fault) -> Fault:
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def clear_requests(self) -> None:
        with self.lock:
            self.requests.clear()

    def requests_for(
        self, path: str | None = None, *, user: str | None = None, method: str | None = None
    ) -> list[RecordedRequest]:
        with self.lock:
            return [
                r
                for r in self.requests
                if (path is None or r.path == path)
                and (user is None or r.user == user)
                and (method is None or r.method == method)
            ]

    def add_solve(self, syned_user_id: str, timestamp_unix: int, *, points: int = 100, category: str = "web") -> Solve:
        """Give a user a new ODL solve, as if they had just solved a challenge."""
        with self.lock:
            solve = self.dataset.solve(timestamp_unix, points=points, category=category)
            self.dataset.users[syned_user_id].odl_solves.append(solve)
            return solve

    def add_flash_ctf(self, syned_user_id: str, result: FlashCtfResult) -> None:
        with self.lock:
            self.dataset.users[syned_user_id].flash_ctfs.append(result)

    def find_solve(self, syned_user_id: str, challenge_solve_id: int) -> Solve:
        user = self.dataset.users[syned_user_id]
        for solve in [*user.odl_solves, *(s for f in user.flash_ctfs for s in f.solves)]:
            if solve.challenge_solve_id == challenge_solve_id:
                return solve
        raise KeyError(challenge_solve_id)

    def change_solve(self, syned_user_id: str, challenge_solve_id: int, **changes: Any) -> Solve:
        """Correct a solve the vendor already reported (`title`, `points`, `category`, `retired`, `nist_roles`)."""
        with self.lock:
            solve = self.find_solve(syned_user_id, challenge_solve_id)
            for name, value in changes.items():
                setattr(solve, name, value)
            return solve

    def repeat_solve(self, syned_user_id: str, challenge_solve_id: int, **changes: Any) -> Solve:
        """List an ODL solve a second time, with `changes`, at the end of the same answer."""
        with self.lock:
            original = self.find_solve(syned_user_id, challenge_solve_id)
            copy = Solve(**{**original.__dict__, **changes})
            self.dataset.users[syned_user_id].repeated_solves.append(copy)
            return copy

    # -- answering -----------------------------------------------------------------

    def answer(self, method: str, path: str, query: dict[str, str], body: Any, authorization: str | None) -> _Answer:
        """The response to one request (faults included), as an `_Answer`."""
        if authorization is None or not authorization.startswith("Bearer "):
            return _Answer(403, {"detail": "Not authenticated"})
        if authorization != f"Bearer {self.token}":
            return _Answer(401, {"detail": "Invalid authentication credentials"})
        user = query.get("syned_user_id") or (body.get("syned_user_id") if isinstance(body, dict) else None)
        team = query.get("syned_team_id") or (body.get("syned_team_id") if isinstance(body, dict) else None)
        with self.lock:
            fault = None
            for candidate in self.faults:
                if candidate.matches(path, user, team):
                    if candidate.passed < candidate.skip:
                        candidate.passed += 1
                        continue
                    candidate.hits += 1
                    fault = candidate
                    break
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.disconnect:
                return _Answer(0, None)
            if fault.status is not None:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                detail = fault.detail if fault.detail is not None else _default_detail(fault.status)
                return _Answer(fault.status, {"detail": detail}, headers)
        try:
            with self.lock:
                return self._route(method, path, query, body)
        except _Answer as answer:
            return answer

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> _Answer:
        routes = {
            ("GET", ""): self._index,
            ("GET", "users"): self._get_user,
            ("POST", "users"): self._create_user,
            ("POST", "teams"): self._create_team,
            ("POST", "teams/delete"): self._delete_team,
            ("POST", "users/assign_team"): self._assign_team,
            ("POST", "users/delete_assignment"): self._delete_assignment,
            ("GET", "users/get_team_assignments"): self._get_team_assignments,
            ("GET", "scores/get_odl_scores"): self._get_odl_scores,
            ("GET", "scores/get_flash_ctf_progress"): self._get_flash_ctf_progress,
        }
        route = routes.get((method, path))
        if route is None:
            if any(p == path for _, p in routes):
                return _Answer(405, {"detail": "Method Not Allowed"})
            return _Answer(404, {"detail": "Not Found"})
        return route(query, body)

    # -- endpoints -----------------------------------------------------------------

    def _index(self, query: dict[str, str], body: Any) -> _Answer:
        return _Answer(200, {"message": "SynEd integration API"})

    def _user(self, syned_user_id: str) -> FakeUser:
        user = self.dataset.users.get(syned_user_id)
        if user is None:
            raise _Answer(404, {"detail": "User not found"})
        return user

    def _team(self, syned_team_id: str) -> FakeTeam:
        team = self.dataset.teams.get(syned_team_id)
        if team is None:
            raise _Answer(404, {"detail": "Team not found"})
        return team

    def _get_user(self, query: dict[str, str], body: Any) -> _Answer:
        uid = _required_query(query, "syned_user_id")
        return _Answer(200, self._user(uid).user_json())

    def _create_user(self, query: dict[str, str], body: Any) -> _Answer:
        data = _body_fields(body, required=("first_name", "last_name", "email", "role", "syned_user_id"))
        problems = [
            {"loc": ["body", name], "msg": "String should have at least 1 character", "type": "string_too_short"}
            for name in ("first_name", "last_name", "syned_user_id")
            if not str(data[name])
        ]
        if "@" not in str(data["email"]):
            problems.append(
                {"loc": ["body", "email"], "msg": "value is not a valid email address", "type": "value_error"}
            )
        if data["role"] not in ("coach", "user"):
            problems.append({"loc": ["body", "role"], "msg": "Input should be 'coach' or 'user'", "type": "enum"})
        if problems:
            raise _Answer(422, {"detail": problems})
        if data["syned_user_id"] in self.dataset.users:
            raise _Answer(409, {"detail": "User already exists"})
        user = self.dataset.add_user(
            FakeUser(
                data["syned_user_id"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                email=data["email"],
                role=data["role"],
                status="user_created",
                coach_syned_user_id=data.get("syned_coach_user_id"),
            )
        )
        return _Answer(201, user.user_json())

    def _create_team(self, query: dict[str, str], body: Any) -> _Answer:
        data = _body_fields(
            body, required=("syned_coach_user_id", "syned_team_id", "team_name", "affiliation", "division")
        )
        if data["division"] not in DIVISIONS:
            raise _Answer(
                422,
                {
                    "detail": [
                        {
                            "loc": ["body", "division"],
                            "msg": "Input should be 'high_school', 'middle_school' or 'college'",
                            "type": "enum",
                        }
                    ]
                },
            )
        self._user(data["syned_coach_user_id"])
        if data["syned_team_id"] in self.dataset.teams:
            raise _Answer(409, {"detail": "Team already exists"})
        team = self.dataset.add_team(
            FakeTeam(
                data["syned_team_id"],
                name=data["team_name"],
                affiliation=data["affiliation"],
                division=data["division"],
                coach_syned_user_id=data["syned_coach_user_id"],
            )
        )
        return _Answer(201, team.to_json())

    def _delete_team(self, query: dict[str, str], body: Any) -> _Answer:
        data = _body_fields(body, required=("syned_team_id",))
        self._team(data["syned_team_id"])
        del self.dataset.teams[data["syned_team_id"]]
        for uid in [u for u, t in self.dataset.assignments.items() if t == data["syned_team_id"]]:
            del self.dataset.assignments[uid]
        return _Answer(200, {"detail": "Team deleted"})

    def _assign_team(self, query: dict[str, str], body: Any) -> _Answer:
        data = _body_fields(body, required=("syned_team_id", "syned_user_id"))
        self._user(data["syned_user_id"])
        self._team(data["syned_team_id"])
        self.dataset.assign(data["syned_user_id"], data["syned_team_id"])
        return _Answer(201, {"syned_team_id": data["syned_team_id"], "syned_user_id": data["syned_user_id"]})

    def _delete_assignment(self, query: dict[str, str], body: Any) -> _Answer:
        data = _body_fields(body, required=("syned_user_id",))
        self._user(data["syned_user_id"])
        team = self.dataset.assignments.pop(data["syned_user_id"], None)
        if team is None:
            raise _Answer(404, {"detail": "Assignment not found"})
        return _Answer(200, {"syned_team_id": team, "syned_user_id": data["syned_user_id"]})

    def _get_team_assignments(self, query: dict[str, str], body: Any) -> _Answer:
        team_id = query.get("syned_team_id")
        if team_id is not None:
            self._team(team_id)
        rows = [
            {"syned_team_id": t, "syned_user_id": u}
            for u, t in sorted(self.dataset.assignments.items())
            if team_id is None or t == team_id
        ]
        return _Answer(200, {"assignments": rows, "total_count": len(rows)})

    def _get_odl_scores(self, query: dict[str, str], body: Any) -> _Answer:
        uid = _required_query(query, "syned_user_id")
        after: int | None = None
        if "after_time_unix" in query:
            try:
                after = int(query["after_time_unix"])
            except ValueError:
                raise _Answer(
                    422,
                    {
                        "detail": [
                            {
                                "loc": ["query", "after_time_unix"],
                                "msg": "Input should be a valid integer, unable to parse string as an integer",
                                "type": "int_parsing",
                            }
                        ]
                    },
                ) from None
        user = self._scores_of(uid)
        return _Answer(200, user.odl_json(after))

    def _get_flash_ctf_progress(self, query: dict[str, str], body: Any) -> _Answer:
        uid = _required_query(query, "syned_user_id")
        user = self._scores_of(uid)
        if not user.flash_progress:
            raise _Answer(404, {"detail": "No flash CTF progress found for this user"})
        return _Answer(200, user.flash_json())

    def _scores_of(self, syned_user_id: str) -> FakeUser:
        user = self._user(syned_user_id)
        if user.scores_refused:
            raise _Answer(403, {"detail": f"User is not approved (status: {user.status})"})
        return user


def _default_detail(status: int) -> Any:
    if status == 404:
        return "User not found"
    if status == 422:
        return [{"loc": ["query", "syned_user_id"], "msg": "Field required", "type": "missing"}]
    if status == 429:
        return "Too Many Requests"
    if status == 403:
        return "User is not approved"
    return "Internal Server Error" if status >= 500 else "Error"


def _required_query(query: dict[str, str], name: str) -> str:
    if name not in query:
        raise _Answer(422, {"detail": [_missing("query", name)]})
    return query[name]


def _body_fields(body: Any, *, required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _Answer(422, {"detail": [{"loc": ["body"], "msg": "Field required", "type": "missing"}]})
    problems = [_missing("body", name) for name in required if name not in body]
    problems += [
        {"loc": ["body", name], "msg": "Input should be a valid string", "type": "string_type"}
        for name in required
        if name in body and not isinstance(body[name], str)
    ]
    if problems:
        raise _Answer(422, {"detail": problems})
    return body


class _QuietServer(LocalHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up first (it timed out) is expected, not worth a traceback."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError):
            return
        super().handle_error(request, client_address)


class _FakeHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, like the real vendor: a client's pool reuses its connections."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm the second
    # waits for the client's delayed ACK (~40 ms). Real servers (uvicorn) disable it too.
    disable_nagle_algorithm = True
    platform: FakeGamePlatform

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        pass

    def _serve(self, method: str) -> None:
        received = time.monotonic()
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        platform = self.platform
        if platform.latency:
            time.sleep(platform.latency)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        if not url.path.startswith(PREFIX):
            answer = _Answer(404, {"detail": "Not Found"})
            path = url.path
        else:
            path = url.path[len(PREFIX) :].strip("/")
            if raw and not isinstance(body, dict | list):
                answer = _Answer(
                    422, {"detail": [{"loc": ["body", 0], "msg": "JSON decode error", "type": "json_invalid"}]}
                )
            else:
                answer = platform.answer(method, path, query, body, self.headers.get("Authorization"))
        with platform.lock:
            platform.requests.append(RecordedRequest(method, path, query, body, answer.status, received))
        if answer.status == 0:
            self.close_connection = True
            return
        payload = json.dumps(answer.body).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
