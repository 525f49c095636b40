-- name: seeded_mark --
-- The comment on the current database (the seed leaves its mark there).
select shobj_description(oid, 'pg_database') from pg_database where datname = current_database()

-- name: mark_seeded --
-- The database name and the mark are composed in (psycopg.sql): a comment takes no parameters.
comment on database {database} is {mark}

-- name: insert_admin --
insert into profiles (id, role, is_approved, first_name, last_name, email)
values (%(id)s, 'admin', true, 'Dev', 'Admin', %(email)s)
on conflict (id) do nothing

-- name: insert_coach --
insert into profiles (id, role, is_approved, game_platform_user_id, first_name, last_name, email)
values (%(id)s, 'coach', true, %(game_platform_user_id)s, %(first_name)s, %(last_name)s, %(email)s)
on conflict (id) do nothing

-- name: insert_competitor --
-- A null game_platform_id: a competitor not on the platform yet (the sync leaves it alone).
insert into competitors (id, coach_id, first_name, last_name, email, game_platform_id)
values (%(id)s, %(coach_id)s, %(first_name)s, %(last_name)s, %(email)s, %(game_platform_id)s)
on conflict (id) do nothing

-- name: insert_team --
insert into teams (id, coach_id, name, division, affiliation, game_platform_id)
values (%(id)s, %(coach_id)s, %(name)s, %(division)s, %(affiliation)s, %(game_platform_id)s)
on conflict (id) do nothing

-- name: insert_team_member --
insert into team_members (team_id, competitor_id)
values (%(team_id)s, %(competitor_id)s)
on conflict (team_id, competitor_id) do nothing

-- name: find_admin --
-- An admin profile, the given one first.
select id, email from profiles where role = 'admin' order by (id = %(preferred)s) desc, id limit 1
