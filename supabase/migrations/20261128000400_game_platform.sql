-- Game Platform domain data: what the `game_platform_sync` and
-- `game_platform_totals_sweep` jobs read and write (SPEC section 5), shaped by
-- the vendor as it really behaves (SPEC section 5, "Vendor behaviour to
-- honour"; what the original app learned in production).
--
-- An existing app database may already hold some of these tables (the original
-- app's, converted by 20261128000050_adopt_original_app.sql), so every table is
-- created `if not exists` with its key only, and every other column is added
-- `if not exists`: a fresh database gets the full shape, an old one gains what
-- it lacks, and no row is touched; constraints are only widened. Safe to re-run.
-- `profiles` belongs to its own migration.
--
-- Platform ids are the vendor's `syned_user_id` / `syned_team_id`: our ids,
-- sent to the vendor when the user or team was created there, kept as text.

-- Which of these tables this migration creates: only those get row level
-- security here (and, being the bundle's, the service-role-only privileges of
-- job_queue_apply_privileges, 20261128000900_privileges.sql). A table the app
-- already has keeps its own RLS policies and grants (its dashboard may read it
-- as `authenticated`).
create temp table _game_platform_new_tables as
select t.name
  from unnest(array[
           'competitors', 'teams', 'team_members', 'game_platform_stats',
           'game_platform_sync_state', 'game_platform_challenge_solves',
           'game_platform_flash_ctf_events', 'game_platform_sync_runs'
       ]) as t(name)
 where to_regclass(format('public.%I', t.name)) is null;

-- ---------------------------------------------------------------------------
-- Roster: competitors, teams, team members
-- ---------------------------------------------------------------------------

create table if not exists public.competitors (
    id uuid primary key default gen_random_uuid()
);
alter table public.competitors
    -- The coach's profiles.id. No foreign key: a coach is a profiles row, and
    -- profiles (and auth.users behind it) are managed elsewhere.
    add column if not exists coach_id uuid,
    add column if not exists first_name text,
    add column if not exists last_name text,
    add column if not exists email text,
    add column if not exists game_platform_id text,
    add column if not exists game_platform_synced_at timestamptz,
    add column if not exists game_platform_sync_error text,
    add column if not exists created_at timestamptz not null default now(),
    add column if not exists updated_at timestamptz not null default now();

-- The sync walks linked competitors in platform-id order (keyset), all of them
-- or one coach's: these two indexes serve both walks and the sweep's join.
create index if not exists competitors_game_platform_id_idx
    on public.competitors (game_platform_id) where game_platform_id is not null;
create index if not exists competitors_coach_game_platform_id_idx
    on public.competitors (coach_id, game_platform_id);

create table if not exists public.teams (
    id uuid primary key default gen_random_uuid()
);
alter table public.teams
    add column if not exists coach_id uuid,
    add column if not exists name text,
    add column if not exists division text,
    add column if not exists affiliation text,
    add column if not exists game_platform_id text,
    add column if not exists game_platform_synced_at timestamptz,
    add column if not exists game_platform_sync_error text,
    add column if not exists created_at timestamptz not null default now(),
    add column if not exists updated_at timestamptz not null default now();

create index if not exists teams_coach_id_idx on public.teams (coach_id);

create table if not exists public.team_members (
    id uuid primary key default gen_random_uuid()
);
alter table public.team_members
    add column if not exists team_id uuid not null references public.teams (id) on delete cascade,
    add column if not exists competitor_id uuid not null references public.competitors (id) on delete cascade,
    add column if not exists game_platform_synced_at timestamptz,
    add column if not exists game_platform_sync_error text,
    add column if not exists created_at timestamptz not null default now();

create unique index if not exists team_members_team_id_competitor_id_key
    on public.team_members (team_id, competitor_id);
create index if not exists team_members_competitor_id_idx on public.team_members (competitor_id);

-- ---------------------------------------------------------------------------
-- What the platform told us
-- ---------------------------------------------------------------------------

-- One row per competitor: totals as of `synced_at` (written by the totals
-- sweep; NULL until the first sweep) and the latest solve seen by either job.
create table if not exists public.game_platform_stats (
    competitor_id uuid primary key references public.competitors (id) on delete cascade
);
alter table public.game_platform_stats
    add column if not exists challenges_completed integer not null default 0,
    add column if not exists monthly_ctf_challenges integer not null default 0,
    add column if not exists total_score integer not null default 0,
    add column if not exists last_activity timestamptz,
    add column if not exists synced_at timestamptz,
    add column if not exists updated_at timestamptz not null default now();

-- One row per platform user. Keyed by the platform id rather than a competitor,
-- so it outlives a competitor's deletion or relinking: the sweep then finds a
-- flagged user with no local competitor, reports it and clears the flag.
create table if not exists public.game_platform_sync_state (
    syned_user_id text primary key
);
alter table public.game_platform_sync_state
    -- Start of the sync run that last fetched this user successfully: the next
    -- incremental fetch asks for solves after it (minus a small overlap).
    add column if not exists last_synced_at timestamptz,
    add column if not exists last_attempt_at timestamptz,
    -- Checked below: every value this bundle or the original app writes.
    add column if not exists last_result text,
    add column if not exists error_message text,
    add column if not exists needs_totals_refresh boolean not null default false,
    -- When the current flag was raised (the sweep takes the oldest first).
    add column if not exists needs_totals_refresh_since timestamptz,
    -- When activity was last seen. The sweep clears the flag only if this has not
    -- moved since it read the row, so activity found mid-sweep is never lost.
    add column if not exists totals_refresh_requested_at timestamptz,
    add column if not exists totals_refreshed_at timestamptz,
    add column if not exists totals_error text,
    add column if not exists created_at timestamptz not null default now(),
    add column if not exists updated_at timestamptz not null default now(),
    -- The vendor's `last_accessed_unix_timestamp`, the latest seen (the original app's name).
    add column if not exists last_remote_accessed_at timestamptz;

-- `last_result`: 'not_approved' is a 403 on the user's scores (the platform has
-- not approved the user). Whatever check the table has on it (ours, or the
-- original app's `success|failure` one of the same name) is replaced by one
-- that admits every value either writes, so no existing row is refused.
do $last_result$
declare
    c record;
begin
    for c in
        select conname
          from pg_constraint
         where conrelid = 'public.game_platform_sync_state'::regclass
           and contype = 'c'
           and pg_get_constraintdef(oid) like '%last_result%'
    loop
        execute format('alter table public.game_platform_sync_state drop constraint %I', c.conname);
    end loop;
    alter table public.game_platform_sync_state
        add constraint game_platform_sync_state_last_result_check
        check (last_result in ('updated', 'unchanged', 'remote_missing', 'not_approved', 'failed',
                               -- the original app's values, kept on adopted rows
                               'success', 'failure'));
end
$last_result$;

-- A raised flag always says since when, so the sweep's ordered walk finds it.
do $$
begin
    if not exists (
        select 1 from pg_constraint
         where conrelid = 'public.game_platform_sync_state'::regclass
           and conname = 'game_platform_sync_state_flag_since_check'
    ) then
        alter table public.game_platform_sync_state
            add constraint game_platform_sync_state_flag_since_check
            check (not needs_totals_refresh or needs_totals_refresh_since is not null);
    end if;
end
$$;

-- The sweep's queue: flagged users, oldest flag first. Partial, so it stays as
-- small as the backlog however many users are synced.
create index if not exists game_platform_sync_state_needs_totals_refresh_idx
    on public.game_platform_sync_state (needs_totals_refresh_since, syned_user_id)
    where needs_totals_refresh;

create table if not exists public.game_platform_challenge_solves (
    id bigint generated always as identity primary key
);
alter table public.game_platform_challenge_solves
    add column if not exists syned_user_id text not null,
    add column if not exists challenge_solve_id bigint not null,
    add column if not exists source text not null default 'odl' check (source in ('odl', 'flash_ctf')),
    add column if not exists flash_ctf_event_id text,
    add column if not exists challenge_id bigint,
    add column if not exists challenge_title text,
    add column if not exists challenge_category text,
    add column if not exists challenge_points integer,
    add column if not exists challenge_retired boolean,
    add column if not exists nist_nice_work_roles text[] not null default '{}',
    add column if not exists solved_at timestamptz,
    add column if not exists created_at timestamptz not null default now(),
    -- The vendor's item as received (the app's report card reads
    -- `raw_payload.nist_nice_work_roles`).
    add column if not exists raw_payload jsonb,
    -- When the vendor last changed the row (insert time until then).
    add column if not exists updated_at timestamptz not null default now();

-- A solve is a fact: stored once per user and solve id, upserted, the last
-- seen winning.
create unique index if not exists game_platform_challenge_solves_syned_user_id_challenge_solve_id_key
    on public.game_platform_challenge_solves (syned_user_id, challenge_solve_id);

-- The platform gives flash CTFs no id; `event_id` is derived from the event's
-- name and start time, `<name>:<start unix>` as the original app derives it, so
-- adopted rows and new ones agree (see lib/game_platform/models.py:
-- flash_ctf_event_id). Upserted, the last seen winning.
create table if not exists public.game_platform_flash_ctf_events (
    id bigint generated always as identity primary key
);
alter table public.game_platform_flash_ctf_events
    add column if not exists syned_user_id text not null,
    add column if not exists event_id text not null,
    add column if not exists flash_ctf_name text,
    add column if not exists started_at timestamptz,
    add column if not exists challenges_solved integer not null default 0,
    add column if not exists points_earned integer not null default 0,
    add column if not exists rank integer,
    add column if not exists created_at timestamptz not null default now(),
    add column if not exists updated_at timestamptz not null default now(),
    -- The vendor's item as received (the app's flash dashboard reads its
    -- `challenge_solves`).
    add column if not exists raw_payload jsonb,
    -- The vendor sends no end time today; stored should it ever send one.
    add column if not exists ended_at timestamptz,
    add column if not exists max_points_possible integer;

create unique index if not exists game_platform_flash_ctf_events_syned_user_id_event_id_key
    on public.game_platform_flash_ctf_events (syned_user_id, event_id);

-- Event ids `<start unix>:<name>` (written by earlier versions of this bundle) become
-- `<name>:<start unix>`, in the events and in the solves that name them. Only
-- ids that are exactly the old form of the row's own name and start are
-- renamed; one whose new id is already taken for that user is left as it is.
do $event_ids$
begin
    if not exists (
        select 1 from information_schema.columns
         where table_schema = 'public' and table_name = 'game_platform_flash_ctf_events'
           and column_name = 'syned_user_id'
    ) then
        raise notice 'game_platform_flash_ctf_events has no syned_user_id column: event ids left as they are';
        return;
    end if;

    create temp table _renamed_event_ids as
    select e.id, e.syned_user_id, e.event_id as old_id,
           e.flash_ctf_name || ':' || extract(epoch from e.started_at)::bigint as new_id
      from public.game_platform_flash_ctf_events e
     where e.flash_ctf_name is not null and e.started_at is not null
       and e.event_id = extract(epoch from e.started_at)::bigint || ':' || e.flash_ctf_name;

    delete from _renamed_event_ids r
     where exists (select 1 from public.game_platform_flash_ctf_events o
                    where o.syned_user_id = r.syned_user_id and o.event_id = r.new_id);

    update public.game_platform_flash_ctf_events e
       set event_id = r.new_id
      from _renamed_event_ids r
     where e.id = r.id;

    if exists (
        select 1 from information_schema.columns
         where table_schema = 'public' and table_name = 'game_platform_challenge_solves'
           and column_name = 'flash_ctf_event_id'
    ) then
        update public.game_platform_challenge_solves s
           set flash_ctf_event_id = r.new_id
          from _renamed_event_ids r
         where s.syned_user_id = r.syned_user_id and s.flash_ctf_event_id = r.old_id;
    end if;

    drop table _renamed_event_ids;
end
$event_ids$;

-- ---------------------------------------------------------------------------
-- Sync runs
-- ---------------------------------------------------------------------------

-- One row per sync run, which may span several jobs (continuations). `job_id`
-- is the job currently driving the sync run: each batch's writes commit
-- together with its progress only while that job still owns it
-- (game_platform_sync_run_checkpoint below), so a stale job (retried after it
-- had already handed over) writes nothing.
create table if not exists public.game_platform_sync_runs (
    id bigint generated always as identity primary key
);
alter table public.game_platform_sync_runs
    add column if not exists status text not null default 'running'
        check (status in ('running', 'completed', 'failed')),
    add column if not exists coach_id uuid,
    add column if not exists job_id uuid,
    add column if not exists started_by_job_id uuid,
    add column if not exists full_sync boolean not null default false,
    add column if not exists invocations integer not null default 1,
    add column if not exists progress jsonb not null default '{}'::jsonb,
    add column if not exists counts jsonb not null default '{}'::jsonb,
    add column if not exists error text,
    add column if not exists started_at timestamptz not null default now(),
    add column if not exists updated_at timestamptz not null default now(),
    add column if not exists finished_at timestamptz;

-- A job starts at most one sync run, even when it is retried.
create unique index if not exists game_platform_sync_runs_started_by_job_id_key
    on public.game_platform_sync_runs (started_by_job_id) where started_by_job_id is not null;
create index if not exists game_platform_sync_runs_scope_started_idx
    on public.game_platform_sync_runs (coach_id, started_at desc);

-- The fenced changes of a sync run's state. Each changes a running sync run
-- only for the job that drives it (`job_id`), and says whether it did: a job
-- that has handed its sync run over, or lost it, changes nothing, and its
-- caller rolls back the writes of the same transaction (the sync's batch, a
-- continuation job). Execute is for service_role only
-- (20261128000900_privileges.sql).

-- Which sync run a job resumes: the one a continuation names (`p_sync_run_id`),
-- else the one the job itself started (a retry of that job). `owned`: it is
-- running and driven by this job, which may carry on from `progress`; any
-- other row means this job has been superseded. No row: there is none.
create or replace function public.game_platform_sync_run_resume(p_job_id uuid, p_sync_run_id bigint default null)
returns table (id bigint, status text, job_id uuid, progress jsonb, owned boolean)
language sql
stable
set search_path = public, pg_temp
as $$
    select r.id, r.status, r.job_id, r.progress, (r.status = 'running' and r.job_id = p_job_id)
      from game_platform_sync_runs r
     where case when p_sync_run_id is null then r.started_by_job_id = p_job_id else r.id = p_sync_run_id end
$$;

-- Before a new sync run starts: the latest running sync run of the same scope
-- (one coach's, or the unscoped one), if its job is still pending or
-- processing, holds the scope and is returned (the new job stands down).
-- One whose job is gone, or has finished without finishing it, is failed
-- ("abandoned") and nothing is returned: the new sync run supersedes it.
create or replace function public.game_platform_sync_run_supersede(p_coach_id uuid)
returns table (sync_run_id bigint, job_id uuid, job_status text)
language plpgsql
set search_path = public, pg_temp
as $$
declare
    v_run game_platform_sync_runs%rowtype;
    v_job_status text;
begin
    select * into v_run
      from game_platform_sync_runs r
     where r.status = 'running' and r.coach_id is not distinct from p_coach_id
     order by r.started_at desc
     limit 1
       for update;
    if not found then
        return;
    end if;
    select j.status into v_job_status from job_queue j where j.id = v_run.job_id;
    if v_job_status in ('pending', 'processing') then
        return query select v_run.id, v_run.job_id, v_job_status;
        return;
    end if;
    update game_platform_sync_runs r
       set status = 'failed',
           error = format('abandoned: the job driving it (%s) is %s', v_run.job_id, coalesce(v_job_status, 'gone')),
           finished_at = now(),
           updated_at = now()
     where r.id = v_run.id;
end
$$;

-- A batch written: the sync run's progress and counts move with it.
create or replace function public.game_platform_sync_run_checkpoint(
    p_sync_run_id bigint, p_job_id uuid, p_progress jsonb, p_counts jsonb
)
returns boolean
language plpgsql
set search_path = public, pg_temp
as $$
begin
    update game_platform_sync_runs r
       set progress = p_progress, counts = p_counts, updated_at = now()
     where r.id = p_sync_run_id and r.job_id = p_job_id and r.status = 'running';
    return found;
end
$$;

-- Out of time: the continuation job, enqueued in the same transaction, drives
-- the sync run from here.
create or replace function public.game_platform_sync_run_hand_over(
    p_sync_run_id bigint, p_job_id uuid, p_next_job_id uuid, p_progress jsonb, p_counts jsonb
)
returns boolean
language plpgsql
set search_path = public, pg_temp
as $$
begin
    update game_platform_sync_runs r
       set job_id = p_next_job_id, progress = p_progress, counts = p_counts,
           invocations = r.invocations + 1, error = null, updated_at = now()
     where r.id = p_sync_run_id and r.job_id = p_job_id and r.status = 'running';
    return found;
end
$$;

-- The end of a sync run: `completed`, or `failed` on its job's last attempt.
create or replace function public.game_platform_sync_run_finish(
    p_sync_run_id bigint, p_job_id uuid, p_status text, p_progress jsonb, p_counts jsonb, p_error text default null
)
returns boolean
language plpgsql
set search_path = public, pg_temp
as $$
begin
    update game_platform_sync_runs r
       set status = p_status, progress = p_progress, counts = p_counts, error = p_error,
           finished_at = now(), updated_at = now()
     where r.id = p_sync_run_id and r.job_id = p_job_id and r.status = 'running';
    return found;
end
$$;

-- Why the driving job's attempt failed; its retry resumes the sync run.
create or replace function public.game_platform_sync_run_note_error(p_sync_run_id bigint, p_job_id uuid, p_error text)
returns boolean
language plpgsql
set search_path = public, pg_temp
as $$
begin
    update game_platform_sync_runs r
       set error = left(p_error, 20000), updated_at = now()
     where r.id = p_sync_run_id and r.job_id = p_job_id and r.status = 'running';
    return found;
end
$$;

-- ---------------------------------------------------------------------------
-- Row level security on the tables created above (with RLS on and no policy,
-- anon and authenticated read nothing through Supabase's REST API). The app's
-- own tables are left as they are, with a notice where one has RLS off.
-- ---------------------------------------------------------------------------

do $security$
declare
    t text;
begin
    for t in select name from _game_platform_new_tables loop
        execute format('alter table public.%I enable row level security', t);
    end loop;
    for t in
        select c.relname
          from pg_class c
         where c.relnamespace = 'public'::regnamespace
           and c.relname in ('competitors', 'teams', 'team_members', 'game_platform_stats',
                             'game_platform_sync_state', 'game_platform_challenge_solves',
                             'game_platform_flash_ctf_events', 'game_platform_sync_runs')
           and c.relname not in (select name from _game_platform_new_tables)
           and not c.relrowsecurity
    loop
        raise notice 'public.% existed before this migration and has row level security off: '
                     'Supabase''s REST API serves it to anyone its grants allow. Left as it is.', t;
    end loop;
end
$security$;

drop table _game_platform_new_tables;
