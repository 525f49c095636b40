"""Demo data for a database the dev server created itself: an admin, coaches, competitors, teams.

The roster mirrors the sandbox Game Platform's dataset (the same `syned_user_id`
and `syned_team_id` values), so the sync finds each competitor on the platform.
Locally every team has its full roster while the platform lists only part of
it, so the sync has members to assign. Ids are derived from the platform ids
(uuid5), making the seed idempotent; the database is marked once seeded and
never seeded again. A database given by DATABASE_URL is never seeded.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass

import psycopg
from psycopg import sql

from lib.sql import load_queries
from sandbox.game_platform import Dataset

QUERIES = load_queries(__file__, "seed.sql")

_NAMESPACE = uuid.UUID("5b0c3c1e-63f6-4b8e-9d0e-0a1b2c3d4e5f")
SEEDED_MARK = "scripts/dev.py: demo data seeded"
ADMIN_EMAIL = "admin@dev.local"
ADMIN_ID = uuid.uuid5(_NAMESPACE, "profile:admin")


@dataclass(frozen=True)
class SeedSummary:
    admin_id: uuid.UUID
    coaches: int
    competitors: int
    unlinked_competitors: int
    teams: int
    team_members: int


def demo_id(kind: str, key: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{kind}:{key}")


def is_seeded(conninfo: str) -> bool:
    with psycopg.connect(conninfo, autocommit=True, prepare_threshold=None) as conn:
        row = conn.execute(QUERIES["seeded_mark"]).fetchone()
    return bool(row and row[0] == SEEDED_MARK)


def seed_demo_data(conninfo: str, dataset: Dataset) -> SeedSummary:
    """Insert the demo roster in one transaction and mark the database seeded."""
    coaches = [u for _, u in sorted(dataset.users.items()) if u.role == "coach"]
    competitors = dataset.competitors()
    teams = [t for _, t in sorted(dataset.teams.items())]

    # Full local rosters: the platform's assignments, plus each coach's
    # unassigned competitors dealt round-robin to that coach's teams.
    members: dict[str, list[str]] = defaultdict(list)
    for user_id, team_id in sorted(dataset.assignments.items()):
        members[team_id].append(user_id)
    teams_of: dict[str, list[str]] = defaultdict(list)
    for team in teams:
        teams_of[team.coach_syned_user_id].append(team.syned_team_id)
    for index, user in enumerate(u for u in competitors if u.syned_user_id not in dataset.assignments):
        coach_teams = teams_of.get(user.coach_syned_user_id or "")
        if coach_teams:
            members[coach_teams[index % len(coach_teams)]].append(user.syned_user_id)

    with psycopg.connect(conninfo, prepare_threshold=None) as conn, conn.transaction():
        conn.execute(QUERIES["insert_admin"], {"id": ADMIN_ID, "email": ADMIN_EMAIL})
        for coach in coaches:
            conn.execute(
                QUERIES["insert_coach"],
                {
                    "id": demo_id("coach", coach.syned_user_id),
                    "game_platform_user_id": coach.syned_user_id,
                    "first_name": coach.first_name,
                    "last_name": coach.last_name,
                    "email": coach.email,
                },
            )
        for user in competitors:
            conn.execute(
                QUERIES["insert_competitor"],
                {
                    "id": demo_id("competitor", user.syned_user_id),
                    "coach_id": demo_id("coach", user.coach_syned_user_id or ""),
                    "first_name": user.first_name,
                    "last_name": user.last_name,
                    "email": user.email,
                    "game_platform_id": user.syned_user_id,
                },
            )
        # Two competitors not on the platform yet: the sync leaves them alone.
        unlinked = [("Newcomer", "One"), ("Newcomer", "Two")]
        for number, (first, last) in enumerate(unlinked):
            conn.execute(
                QUERIES["insert_competitor"],
                {
                    "id": demo_id("competitor", f"unlinked-{number}"),
                    "coach_id": demo_id("coach", coaches[0].syned_user_id) if coaches else None,
                    "first_name": first,
                    "last_name": last,
                    "email": f"newcomer{number + 1}@example.test",
                    "game_platform_id": None,
                },
            )
        for team in teams:
            conn.execute(
                QUERIES["insert_team"],
                {
                    "id": demo_id("team", team.syned_team_id),
                    "coach_id": demo_id("coach", team.coach_syned_user_id),
                    "name": team.name,
                    "division": team.division,
                    "affiliation": team.affiliation,
                    "game_platform_id": team.syned_team_id,
                },
            )
        member_rows = 0
        for team_id, user_ids in members.items():
            for user_id in user_ids:
                conn.execute(
                    QUERIES["insert_team_member"],
                    {"team_id": demo_id("team", team_id), "competitor_id": demo_id("competitor", user_id)},
                )
                member_rows += 1
        mark = sql.SQL(QUERIES["mark_seeded"]).format(
            database=sql.Identifier(conn.info.dbname), mark=sql.Literal(SEEDED_MARK)
        )
        conn.execute(mark)
    return SeedSummary(
        admin_id=ADMIN_ID,
        coaches=len(coaches),
        competitors=len(competitors) + len(unlinked),
        unlinked_competitors=len(unlinked),
        teams=len(teams),
        team_members=member_rows,
    )


def find_admin(conninfo: str) -> tuple[uuid.UUID, str | None] | None:
    """An admin profile to mint a local access token for: the seeded one first."""
    with psycopg.connect(conninfo, autocommit=True, prepare_threshold=None) as conn:
        row = conn.execute(QUERIES["find_admin"], {"preferred": ADMIN_ID}).fetchone()
    return (row[0], row[1]) if row else None


def ensure_demo_data(conninfo: str, *, embedded: bool, dataset: Dataset | None) -> str:
    """Seed a database the dev server created itself, once, with the sandbox's roster; say what was done.

    Every start calls this; only the first start on a new embedded database
    inserts anything, so restarts never add rows.
    """
    if not embedded:
        return "none: the dev server never seeds a database given by DATABASE_URL"
    if dataset is None:
        return "none: demo data matches only the sandbox Game Platform"
    if is_seeded(conninfo):
        return "seeded when this database was created (kept)"
    summary = seed_demo_data(conninfo, dataset)
    return (
        f"seeded now: 1 admin, {summary.coaches} coaches, {summary.competitors} competitors "
        f"({summary.unlinked_competitors} not on the platform), {summary.teams} teams, "
        f"{summary.team_members} team members"
    )
