-- The schema supabase/migrations/ produce, read from a freshly migrated
-- database's catalogs (schema `public`). Generated: do not edit. Migrations are
-- append-only (docs/migrations.md): after adding one, run `python -m scripts.schema_dump` and
-- commit this file with it; tests/test_schema_dump.py fails while the two disagree.


create table public.competitors (
    id uuid default gen_random_uuid() not null,
    coach_id uuid,
    first_name text,
    last_name text,
    email text,
    game_platform_id text,
    game_platform_synced_at timestamp with time zone,
    game_platform_sync_error text,
    created_at timestamp with time zone default now() not null,
    updated_at timestamp with time zone default now() not null
);
alter table public.competitors add constraint competitors_pkey PRIMARY KEY (id);
CREATE INDEX competitors_coach_game_platform_id_idx ON public.competitors USING btree (coach_id, game_platform_id);
CREATE INDEX competitors_game_platform_id_idx ON public.competitors USING btree (game_platform_id) WHERE (game_platform_id IS NOT NULL);
alter table public.competitors enable row level security;
-- privileges: service_role: DELETE, INSERT, SELECT, UPDATE

create table public.game_platform_challenge_solves (
    id bigint generated always as identity not null,
    syned_user_id text not null,
    challenge_solve_id bigint not null,
    source text default 'odl'::text not null,
    flash_ctf_event_id text,
    challenge_id bigint,
    challenge_title text,
    challenge_category text,
    challenge_points integer,
    challenge_retired boolean,
    nist_nice_work_roles text[] default '{}'::text[] not null,
    solved_at timestamp with time zone,
    created_at timestamp with time zone default now() not null,
    raw_payload jsonb,
    updated_at timestamp with time zone default now() not null
);
alter table public.game_platform_challenge_solves add constraint game_platform_challenge_solves_source_check CHECK ((source = ANY (ARRAY['odl'::text, 'flash_ctf'::text])));
alter table public.game_platform_challenge_solves add constraint game_platform_challenge_solves_pkey PRIMARY KEY (id);
CREATE UNIQUE INDEX game_platform_challenge_solves_syned_user_id_challenge_solve_id ON public.game_platform_challenge_solves USING btree (syned_user_id, challenge_solve_id);
alter table public.game_platform_challenge_solves enable row level security;
-- privileges: service_role: DELETE, INSERT, SELECT, UPDATE

create table public.game_platform_flash_ctf_events (
    id bigint generated always as identity not null,
    syned_user_id text not null,
    event_id text not null,
    flash_ctf_name text,
    started_at timestamp with time zone,
    challenges_solved integer default 0 not null,
    points_earned integer default 0 not null,
    rank integer,
    created_at timestamp with time zone default now() not null,
    updated_at timestamp with time zone default now() not null,
    raw_payload jsonb,
    ended_at timestamp with time zone,
    max_points_possible integer
);
alter table public.game_platform_flash_ctf_events add constraint game_platform_flash_ctf_events_pkey PRIMARY KEY (id);
CREATE UNIQUE INDEX game_platform_flash_ctf_events_syned_user_id_event_id_key ON public.game_platform_flash_ctf_events USING btree (syned_user_id, event_id);
alter table public.game_platform_flash_ctf_events enable row level security;
-- privileges: service_role: DELETE, INSERT, SELECT, UPDATE

create table public.game_platform_stats (
    competitor_id uuid not null,
    challenges_completed integer default 0 not null,
    monthly_ctf_challenges integer default 0 not null,
    total_score integer default 0 not null,
    last_activity timestamp with time zone,
    synced_at timestamp with time zone,
    updated_at timestamp with time zone default now() not null
);
alter table public.game_platform_stats add constraint game_platform_stats_competitor_id_fkey FOREIGN KEY (competitor_id) REFERENCES competitors(id) ON DELETE CASCADE;
alter table public.game_platform_stats add constraint game_platform_stats_pkey PRIMARY KEY (competitor_id);
alter table public.game_platform_stats enable row level security;
-- privileges: service_role: DELETE, INSERT, SELECT, UPDATE

create table public.game_platform_sync_runs (
    id bigint generated always as identity not null,
    status text default 'running'::text not null,
    coach_id uuid,
    job_id uuid,
    started_by_job_id uuid,
    full_sync boolean default false not null,
    invocations integer default 1 not null,
    progress jsonb default '{}'::jsonb not null,
    counts jsonb default '{}'::jsonb not null,
    error text,
    started_at timestamp with time zone default now() not null,
    updated_at timestamp with time zone default now() not null,
    finished_at timestamp with time zone
);
alter table public.game_platform_sync_runs add constraint game_platform_sync_runs_status_check CHECK ((status = ANY (ARRAY['running'::text, 'completed'::text, 'failed'::text])));
alter table public.game_platform_sync_runs add constraint game_platform_sync_runs_pkey PRIMARY KEY (id);
CREATE INDEX game_platform_sync_runs_scope_started_idx ON public.game_platform_sync_runs USING btree (coach_id, started_at DESC);
CREATE UNIQUE INDEX game_platform_sync_runs_started_by_job_id_key ON public.game_platform_sync_runs USING btree (started_by_job_id) WHERE (started_by_job_id IS NOT NULL);
alter table public.game_platform_sync_runs enable row level security;
-- privileges: service_role: DELETE, INSERT, SELECT, UPDATE

create table public.game_platform_sync_state (
    syned_user_id text not null,
    last_synced_at timestamp with time zone,
    last_attempt_at timestamp with time zone,
    last_result text,
    error_message text,
    needs_totals_refresh boolean default false not null,
    needs_totals_refresh_since timestamp with time zone,
    totals_refresh_requested_at timestamp with time zone,
    totals_refreshed_at timestamp with time zone,
    totals_error text,
    created_at timestamp with time zone default now() not null,
    updated_at timestamp with time zone default now() not null,
    last_remote_accessed_at timestamp with time zone
);
alter table public.game_platform_sync_state add constraint game_platform_sync_state_flag_since_check CHECK (((NOT needs_totals_refresh) OR (needs_totals_refresh_since IS NOT NULL)));
alter table public.game_platform_sync_state add constraint game_platform_sync_state_last_result_check CHECK ((last_result = ANY (ARRAY['updated'::text, 'unchanged'::text, 'remote_missing'::text, 'not_approved'::text, 'failed'::text, 'success'::text, 'failure'::text])));
alter table public.game_platform_sync_state add constraint game_platform_sync_state_pkey PRIMARY KEY (syned_user_id);
CREATE INDEX game_platform_sync_state_needs_totals_refresh_idx ON public.game_platform_sync_state USING btree (needs_totals_refresh_since, syned_user_id) WHERE needs_totals_refresh;
alter table public.game_platform_sync_state enable row level security;
-- privileges: service_role: DELETE, INSERT, SELECT, UPDATE

create table public.job_queue (
    id uuid default gen_random_uuid() not null,
    task_type text not null,
    payload jsonb default '{}'::jsonb not null,
    status text default 'pending'::text not null,
    run_at timestamp with time zone default now() not null,
    attempts integer default 0 not null,
    max_attempts integer default 5 not null,
    last_error text,
    output jsonb,
    dedupe_key text,
    lease_token uuid,
    locked_at timestamp with time zone,
    lease_expires_at timestamp with time zone,
    created_at timestamp with time zone default now() not null,
    updated_at timestamp with time zone default now() not null,
    completed_at timestamp with time zone
);
alter table public.job_queue add constraint job_queue_attempts_check CHECK ((attempts >= 0));
alter table public.job_queue add constraint job_queue_max_attempts_check CHECK ((max_attempts >= 1));
alter table public.job_queue add constraint job_queue_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'processing'::text, 'succeeded'::text, 'failed'::text, 'cancelled'::text])));
alter table public.job_queue add constraint job_queue_task_type_check CHECK (((length(task_type) >= 1) AND (length(task_type) <= 200)));
alter table public.job_queue add constraint job_queue_pkey PRIMARY KEY (id);
CREATE INDEX job_queue_created_idx ON public.job_queue USING btree (created_at DESC, id DESC);
CREATE INDEX job_queue_finished_idx ON public.job_queue USING btree (completed_at) WHERE (status = ANY (ARRAY['succeeded'::text, 'failed'::text, 'cancelled'::text]));
CREATE INDEX job_queue_finished_status_idx ON public.job_queue USING btree (status) WHERE (status = ANY (ARRAY['succeeded'::text, 'failed'::text, 'cancelled'::text]));
CREATE UNIQUE INDEX job_queue_live_dedupe_key_idx ON public.job_queue USING btree (task_type, dedupe_key) WHERE ((dedupe_key IS NOT NULL) AND (status = ANY (ARRAY['pending'::text, 'processing'::text])));
CREATE INDEX job_queue_pending_run_at_idx ON public.job_queue USING btree (run_at) WHERE (status = 'pending'::text);
CREATE INDEX job_queue_processing_lease_idx ON public.job_queue USING btree (lease_expires_at) WHERE (status = 'processing'::text);
CREATE INDEX job_queue_unsuccessful_created_idx ON public.job_queue USING btree (created_at DESC, id DESC) WHERE (status = ANY (ARRAY['failed'::text, 'cancelled'::text]));
alter table public.job_queue enable row level security;
comment on table public.job_queue is 'Background jobs drained by /api/jobs/run. Change rows only through the job_queue_* functions.';
-- privileges: service_role: DELETE, INSERT, SELECT, UPDATE

create table public.job_queue_invocations (
    id bigint generated always as identity not null,
    trigger_source text not null,
    status text default 'running'::text not null,
    requested_limit integer,
    forced boolean default false not null,
    claimed integer default 0 not null,
    processed integer default 0 not null,
    succeeded integer default 0 not null,
    failed integer default 0 not null,
    released integer default 0 not null,
    error text,
    started_at timestamp with time zone default now() not null,
    finished_at timestamp with time zone,
    duration_ms integer,
    idempotency_key uuid,
    claimed_job_ids uuid[]
);
alter table public.job_queue_invocations add constraint job_queue_invocations_status_check CHECK ((status = ANY (ARRAY['running'::text, 'completed'::text, 'paused'::text, 'failed'::text])));
alter table public.job_queue_invocations add constraint job_queue_invocations_pkey PRIMARY KEY (id);
CREATE UNIQUE INDEX job_queue_invocations_idempotency_key_idx ON public.job_queue_invocations USING btree (idempotency_key) WHERE (idempotency_key IS NOT NULL);
CREATE INDEX job_queue_invocations_open_idx ON public.job_queue_invocations USING btree (started_at) WHERE (status = 'running'::text);
CREATE INDEX job_queue_invocations_started_idx ON public.job_queue_invocations USING btree (started_at DESC);
alter table public.job_queue_invocations enable row level security;
comment on table public.job_queue_invocations is 'One row per worker invocation (/api/jobs/run, admin run-worker, fan-out follow-up): its trigger, counts and outcome.';
comment on column public.job_queue_invocations.idempotency_key is 'The worker''s id for the invocation: a re-sent job_queue_begin_invocation with it answers the first one''s invocation and jobs.';
comment on column public.job_queue_invocations.claimed_job_ids is 'The jobs job_queue_begin_invocation claimed for this invocation, in the order it returned them.';
-- privileges: service_role: DELETE, INSERT, SELECT, UPDATE

create table public.job_queue_schedules (
    name text not null,
    task_type text not null,
    payload jsonb default '{}'::jsonb not null,
    cron text not null,
    enabled boolean default true not null,
    next_run_at timestamp with time zone not null,
    last_enqueued_at timestamp with time zone,
    last_job_id uuid,
    created_at timestamp with time zone default now() not null,
    updated_at timestamp with time zone default now() not null
);
alter table public.job_queue_schedules add constraint job_queue_schedules_cron_check CHECK ((job_queue_cron_problem(cron) IS NULL));
alter table public.job_queue_schedules add constraint job_queue_schedules_name_check CHECK ((name ~ '^[a-z0-9][a-z0-9_.:-]{0,99}$'::text));
alter table public.job_queue_schedules add constraint job_queue_schedules_payload_check CHECK ((jsonb_typeof(payload) = 'object'::text));
alter table public.job_queue_schedules add constraint job_queue_schedules_task_type_check CHECK (((length(task_type) >= 1) AND (length(task_type) <= 200)));
alter table public.job_queue_schedules add constraint job_queue_schedules_pkey PRIMARY KEY (name);
CREATE INDEX job_queue_schedules_due_idx ON public.job_queue_schedules USING btree (next_run_at) WHERE enabled;
alter table public.job_queue_schedules enable row level security;
comment on table public.job_queue_schedules is 'Recurring jobs: every /api/jobs/run invocation enqueues the enabled ones whose next_run_at has passed.';
-- privileges: service_role: DELETE, INSERT, SELECT, UPDATE

create table public.job_queue_settings (
    id boolean default true not null,
    processing_enabled boolean default true not null,
    paused_reason text,
    updated_at timestamp with time zone default now() not null
);
alter table public.job_queue_settings add constraint job_queue_settings_id_check CHECK (id);
alter table public.job_queue_settings add constraint job_queue_settings_pkey PRIMARY KEY (id);
alter table public.job_queue_settings enable row level security;
comment on table public.job_queue_settings is 'The queue''s global pause switch (one row). The worker reads it on every call.';
-- privileges: service_role: DELETE, INSERT, SELECT, UPDATE

create table public.profiles (
    id uuid not null,
    role text,
    is_approved boolean default false not null,
    game_platform_user_id text,
    first_name text,
    last_name text,
    email text,
    created_at timestamp with time zone default now() not null,
    updated_at timestamp with time zone default now() not null
);
alter table public.profiles add constraint profiles_pkey PRIMARY KEY (id);
alter table public.profiles enable row level security;
comment on table public.profiles is 'App users. The admin endpoints admit sessions whose profile has role = ''admin''.';
-- privileges: service_role: DELETE, INSERT, SELECT, UPDATE

create table public.team_members (
    id uuid default gen_random_uuid() not null,
    team_id uuid not null,
    competitor_id uuid not null,
    game_platform_synced_at timestamp with time zone,
    game_platform_sync_error text,
    created_at timestamp with time zone default now() not null
);
alter table public.team_members add constraint team_members_competitor_id_fkey FOREIGN KEY (competitor_id) REFERENCES competitors(id) ON DELETE CASCADE;
alter table public.team_members add constraint team_members_team_id_fkey FOREIGN KEY (team_id) REFERENCES teams(id) ON DELETE CASCADE;
alter table public.team_members add constraint team_members_pkey PRIMARY KEY (id);
CREATE INDEX team_members_competitor_id_idx ON public.team_members USING btree (competitor_id);
CREATE UNIQUE INDEX team_members_team_id_competitor_id_key ON public.team_members USING btree (team_id, competitor_id);
alter table public.team_members enable row level security;
-- privileges: service_role: DELETE, INSERT, SELECT, UPDATE

create table public.teams (
    id uuid default gen_random_uuid() not null,
    coach_id uuid,
    name text,
    division text,
    affiliation text,
    game_platform_id text,
    game_platform_synced_at timestamp with time zone,
    game_platform_sync_error text,
    created_at timestamp with time zone default now() not null,
    updated_at timestamp with time zone default now() not null
);
alter table public.teams add constraint teams_pkey PRIMARY KEY (id);
CREATE INDEX teams_coach_id_idx ON public.teams USING btree (coach_id);
alter table public.teams enable row level security;
-- privileges: service_role: DELETE, INSERT, SELECT, UPDATE

CREATE OR REPLACE FUNCTION public.game_platform_sync_run_checkpoint(p_sync_run_id bigint, p_job_id uuid, p_progress jsonb, p_counts jsonb)
 RETURNS boolean
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
begin
    update game_platform_sync_runs r
       set progress = p_progress, counts = p_counts, updated_at = now()
     where r.id = p_sync_run_id and r.job_id = p_job_id and r.status = 'running';
    return found;
end
$function$;
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.game_platform_sync_run_finish(p_sync_run_id bigint, p_job_id uuid, p_status text, p_progress jsonb, p_counts jsonb, p_error text DEFAULT NULL::text)
 RETURNS boolean
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
begin
    update game_platform_sync_runs r
       set status = p_status, progress = p_progress, counts = p_counts, error = p_error,
           finished_at = now(), updated_at = now()
     where r.id = p_sync_run_id and r.job_id = p_job_id and r.status = 'running';
    return found;
end
$function$;
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.game_platform_sync_run_hand_over(p_sync_run_id bigint, p_job_id uuid, p_next_job_id uuid, p_progress jsonb, p_counts jsonb)
 RETURNS boolean
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
begin
    update game_platform_sync_runs r
       set job_id = p_next_job_id, progress = p_progress, counts = p_counts,
           invocations = r.invocations + 1, error = null, updated_at = now()
     where r.id = p_sync_run_id and r.job_id = p_job_id and r.status = 'running';
    return found;
end
$function$;
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.game_platform_sync_run_note_error(p_sync_run_id bigint, p_job_id uuid, p_error text)
 RETURNS boolean
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
begin
    update game_platform_sync_runs r
       set error = left(p_error, 20000), updated_at = now()
     where r.id = p_sync_run_id and r.job_id = p_job_id and r.status = 'running';
    return found;
end
$function$;
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.game_platform_sync_run_resume(p_job_id uuid, p_sync_run_id bigint DEFAULT NULL::bigint)
 RETURNS TABLE(id bigint, status text, job_id uuid, progress jsonb, owned boolean)
 LANGUAGE sql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
    select r.id, r.status, r.job_id, r.progress, (r.status = 'running' and r.job_id = p_job_id)
      from game_platform_sync_runs r
     where case when p_sync_run_id is null then r.started_by_job_id = p_job_id else r.id = p_sync_run_id end
$function$;
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.game_platform_sync_run_supersede(p_coach_id uuid)
 RETURNS TABLE(sync_run_id bigint, job_id uuid, job_status text)
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
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
$function$;
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_apply_privileges()
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
declare
    f regprocedure;
    t regclass;
    s regclass;
begin
    for f in
        select p.oid::regprocedure
          from pg_proc p
         where p.pronamespace = 'public'::regnamespace
           and (p.proname like 'job\_queue\_%' or p.proname like 'game\_platform\_%')
         order by p.oid
    loop
        execute format('revoke execute on function %s from public, anon, authenticated', f);
        execute format('grant execute on function %s to service_role', f);
    end loop;

    for t in
        select c.oid::regclass
          from pg_class c
         where c.relnamespace = 'public'::regnamespace
           and c.relkind in ('r', 'p')
           and (c.relname = 'job_queue' or c.relname like 'job\_queue\_%'
                or ((c.relname in ('profiles', 'competitors', 'teams', 'team_members')
                     or c.relname like 'game\_platform\_%')
                    and c.relrowsecurity
                    and not exists (select from pg_policy pol where pol.polrelid = c.oid)))
         order by c.oid
    loop
        execute format('alter table %s enable row level security', t);
        execute format('revoke all on table %s from public, anon, authenticated', t);
        execute format('grant select, insert, update, delete on table %s to service_role', t);
        for s in
            select d.objid::regclass
              from pg_depend d
              join pg_class seq on seq.oid = d.objid and seq.relkind = 'S'
             where d.classid = 'pg_class'::regclass and d.refclassid = 'pg_class'::regclass
               and d.refobjid = t and d.deptype in ('a', 'i')
        loop
            execute format('revoke all on sequence %s from public, anon, authenticated', s);
            execute format('grant usage, select, update on sequence %s to service_role', s);
        end loop;
    end loop;
end
$function$;
comment on function job_queue_apply_privileges() is 'Close every job_queue_*/game_platform_* function and the bundle''s tables (and their sequences) to all but service_role. Safe to run again; every migration that adds one ends with it.';
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_begin_invocation(p_trigger_source text, p_limit integer, p_forced boolean DEFAULT false, p_lease interval DEFAULT '00:15:00'::interval, p_idempotency_key uuid DEFAULT NULL::uuid)
 RETURNS TABLE(invocation_id bigint, processing_enabled boolean, paused_reason text, scheduled text[], id uuid, task_type text, payload_json text, attempts integer, max_attempts integer, lease_token uuid, run_at timestamp with time zone, lease_expires_at timestamp with time zone)
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
declare
    v_invocation bigint;
    v_enabled boolean;
    v_reason text;
    v_status text;
    v_started timestamptz;
    v_ids uuid[];
    v_jobs job_queue[];
    v_scheduled text[] := '{}';
begin
    -- This transaction commits without waiting for the WAL flush: see "Worker invocations" above.
    perform set_config('synchronous_commit', 'off', true);
    if p_idempotency_key is not null then
        -- A repeat may arrive while the first call is still running (its client
        -- gave up on the connection, the server did not): wait for it to commit.
        perform pg_advisory_xact_lock(hashtextextended('job_queue_begin_invocation ' || p_idempotency_key::text, 0));
        select r.id, r.status, r.started_at, r.claimed_job_ids
          into v_invocation, v_status, v_started, v_ids
          from job_queue_invocations r
         where r.idempotency_key = p_idempotency_key;
        if found then
            -- The first call's answer: paused only if it found the queue paused and claimed nothing.
            v_enabled := v_status <> 'paused';
            select s.paused_reason into v_reason from job_queue_settings s;
            return query
            select v_invocation, v_enabled, v_reason, v_scheduled, j.id, j.task_type, j.payload::text, j.attempts,
                   j.max_attempts, j.lease_token, j.run_at, j.lease_expires_at
              from unnest(coalesce(v_ids, '{}')) with ordinality as c(id, n)
              join job_queue j on j.id = c.id
             where j.status = 'processing' and j.locked_at = v_started
             order by c.n;
            if found then
                return;
            end if;
            return query
            select v_invocation, v_enabled, v_reason, v_scheduled, null::uuid, null::text, null::text, null::integer,
                   null::integer, null::uuid, null::timestamptz, null::timestamptz;
            return;
        end if;
    end if;

    -- Nothing due, the common case, costs one probe of job_queue_schedules_due_idx.
    if exists (select from job_queue_schedules sc where sc.enabled and sc.next_run_at <= now()) then
        select coalesce(array_agg(d.schedule_name order by d.schedule_name) filter (where d.job_id is not null), '{}')
          into v_scheduled
          from job_queue_enqueue_due_schedules() d;
    end if;

    update job_queue_invocations r
       set status = 'failed',
           error = 'interrupted: the invocation ended without recording its outcome (killed at its time limit?)',
           finished_at = null
     where r.status = 'running' and r.started_at < now() - interval '1 hour';

    select s.processing_enabled, s.paused_reason into v_enabled, v_reason from job_queue_settings s;
    if not (v_enabled or coalesce(p_forced, false)) then
        insert into job_queue_invocations (trigger_source, requested_limit, forced, idempotency_key, status,
                                           finished_at, duration_ms)
        values (coalesce(p_trigger_source, 'unknown'), p_limit, coalesce(p_forced, false), p_idempotency_key,
                'paused', clock_timestamp(), (extract(epoch from clock_timestamp() - now()) * 1000)::integer)
        returning job_queue_invocations.id into v_invocation;
        return query
        select v_invocation, v_enabled, v_reason, v_scheduled, null::uuid, null::text, null::text, null::integer,
               null::integer, null::uuid, null::timestamptz, null::timestamptz;
        return;
    end if;

    select array_agg(x.job order by x.n)
      into v_jobs
      from (select c as job, row_number() over () as n from job_queue_claim(p_limit, p_lease) c) x;
    insert into job_queue_invocations (trigger_source, requested_limit, forced, idempotency_key, claimed_job_ids)
    values (coalesce(p_trigger_source, 'unknown'), p_limit, coalesce(p_forced, false), p_idempotency_key,
            case when p_idempotency_key is not null then (select array_agg(j.id) from unnest(v_jobs) j) end)
    returning job_queue_invocations.id into v_invocation;
    if cardinality(v_jobs) > 0 then
        return query
        select v_invocation, v_enabled, v_reason, v_scheduled, j.id, j.task_type, j.payload::text, j.attempts,
               j.max_attempts, j.lease_token, j.run_at, j.lease_expires_at
          from unnest(v_jobs) with ordinality as j
         order by j.ordinality;
        return;
    end if;
    return query
    select v_invocation, v_enabled, v_reason, v_scheduled, null::uuid, null::text, null::text, null::integer,
           null::integer, null::uuid, null::timestamptz, null::timestamptz;
end
$function$;
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_cancel(p_id uuid, p_reason text DEFAULT NULL::text)
 RETURNS TABLE(id uuid, status text, previous_status text, changed boolean)
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
declare
    v_status text;
begin
    select j.status into v_status from job_queue j where j.id = p_id for update;
    if not found then
        return;
    end if;
    if v_status not in ('pending', 'processing') then
        return query select p_id, v_status, v_status, false;
        return;
    end if;
    update job_queue j
       set status = 'cancelled',
           last_error = coalesce(p_reason, format('cancelled while %s', v_status)),
           completed_at = now(),
           updated_at = now(),
           lease_token = null,
           lease_expires_at = null
     where j.id = p_id;
    return query select p_id, 'cancelled'::text, v_status, true;
end
$function$;
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_claim(p_limit integer, p_lease interval DEFAULT '00:15:00'::interval)
 RETURNS SETOF job_queue
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
declare
    v_reclaimed integer := 0;
begin
    if p_limit is null or p_limit < 1 then
        raise exception 'p_limit must be at least 1 (got %)', p_limit using errcode = '22023';
    end if;
    if p_lease is null or p_lease <= interval '0' then
        raise exception 'p_lease must be a positive interval (got %)', p_lease using errcode = '22023';
    end if;

    -- Expired leases are rare: one probe of the processing index decides whether to look.
    if exists (select from job_queue s where s.status = 'processing' and s.lease_expires_at <= now()) then
        -- Expired leases with no attempts left: failed for good, saying why.
        update job_queue j
           set status = 'failed',
               last_error = format(
                   'lease expired at %s during attempt %s of %s: the worker stopped before finishing (killed at its time limit?)',
                   j.lease_expires_at, j.attempts, j.max_attempts),
               completed_at = now(),
               updated_at = now(),
               lease_token = null,
               lease_expires_at = null
         where j.id in (
            select s.id from job_queue s
             where s.status = 'processing' and s.lease_expires_at <= now() and s.attempts >= s.max_attempts
             order by s.lease_expires_at
             limit 100
             for update skip locked);

        -- Expired leases with attempts left: taken over as a new attempt.
        return query
        with expired as (
            select s.id from job_queue s
             where s.status = 'processing' and s.lease_expires_at <= now() and s.attempts < s.max_attempts
             order by s.lease_expires_at
             limit p_limit
             for update skip locked
        ), taken as (
            update job_queue j
               set attempts = j.attempts + 1,
                   lease_token = gen_random_uuid(),
                   locked_at = now(),
                   lease_expires_at = now() + p_lease,
                   updated_at = now(),
                   last_error = format('lease expired at %s during attempt %s; reclaimed', j.lease_expires_at, j.attempts)
              from expired
             where j.id = expired.id
            returning j.*
        )
        select * from taken order by run_at;
        get diagnostics v_reclaimed = row_count;
    end if;

    if v_reclaimed < p_limit then
        return query
        with due as (
            select s.id from job_queue s
             where s.status = 'pending' and s.run_at <= now()
             order by s.run_at
             limit p_limit - v_reclaimed
             for update skip locked
        ), claimed as (
            update job_queue j
               set status = 'processing',
                   attempts = j.attempts + 1,
                   lease_token = gen_random_uuid(),
                   locked_at = now(),
                   lease_expires_at = now() + p_lease,
                   updated_at = now()
              from due
             where j.id = due.id
            returning j.*
        )
        select * from claimed order by run_at;
    end if;
end
$function$;
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_cleanup(p_older_than interval DEFAULT '30 days'::interval, p_batch_size integer DEFAULT 1000, p_max_batches integer DEFAULT 50)
 RETURNS integer
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
declare
    v_total integer := 0;
    v_batch integer;
begin
    if p_older_than is null or p_older_than < interval '0' then
        raise exception 'p_older_than must be a non-negative interval' using errcode = '22023';
    end if;
    if p_batch_size is null or p_batch_size < 1 or p_max_batches is null or p_max_batches < 1 then
        raise exception 'p_batch_size and p_max_batches must be at least 1' using errcode = '22023';
    end if;
    for i in 1..p_max_batches loop
        delete from job_queue j
         where j.id in (
            select s.id from job_queue s
             where s.status in ('succeeded', 'failed', 'cancelled')
               and s.completed_at < now() - p_older_than
             order by s.completed_at
             limit p_batch_size
             for update skip locked);
        get diagnostics v_batch = row_count;
        v_total := v_total + v_batch;
        exit when v_batch < p_batch_size;
    end loop;
    for i in 1..p_max_batches loop
        delete from job_queue_invocations r
         where r.id in (
            select s.id from job_queue_invocations s
             where s.started_at < now() - p_older_than
             order by s.started_at
             limit p_batch_size);
        get diagnostics v_batch = row_count;
        v_total := v_total + v_batch;
        exit when v_batch < p_batch_size;
    end loop;
    return v_total;
end
$function$;
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_complete_invocation(p_invocation_id bigint, p_status text, p_claimed integer, p_processed integer, p_succeeded integer, p_failed integer, p_released integer, p_error text DEFAULT NULL::text, p_succeeded_ids uuid[] DEFAULT '{}'::uuid[], p_outputs jsonb[] DEFAULT '{}'::jsonb[], p_lease_tokens uuid[] DEFAULT '{}'::uuid[])
 RETURNS TABLE(id uuid, status text, attempts integer, max_attempts integer, run_at timestamp with time zone, last_error text)
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
declare
    v_marked integer := 0;
begin
    -- As job_queue_begin_invocation: no wait for the WAL flush, this transaction only.
    perform set_config('synchronous_commit', 'off', true);
    if cardinality(p_succeeded_ids) > 0 then
        return query
        select m.id, m.status, m.attempts, m.max_attempts, m.run_at, m.last_error
          from job_queue_mark_succeeded_batch(p_succeeded_ids, p_outputs, p_lease_tokens) m;
        get diagnostics v_marked = row_count;
    end if;
    update job_queue_invocations r
       set status = p_status,
           claimed = p_claimed,
           processed = p_processed,
           succeeded = p_succeeded + v_marked,
           failed = p_failed,
           released = p_released,
           error = left(p_error, 20000),
           finished_at = clock_timestamp(),
           duration_ms = (extract(epoch from clock_timestamp() - r.started_at) * 1000)::integer
     where r.id = p_invocation_id;
end
$function$;
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_cron_field(p_text text, p_low integer, p_high integer, p_field text, p_names text[] DEFAULT NULL::text[])
 RETURNS integer[]
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
 SET search_path TO 'public', 'pg_temp'
AS $function$
declare
    v_part text;
    v_match text[];
    v_bounds text[];
    v_start integer;
    v_end integer;
    v_step integer;
    v_values integer[] := '{}';
    v_ends integer[];
    v_token text;
    v_position integer;
begin
    if p_text is null or p_text = '' then
        raise exception '% is empty', p_field using errcode = '22023';
    end if;
    foreach v_part in array string_to_array(p_text, ',') loop
        v_match := regexp_match(lower(v_part), '^(\*|[0-9a-z]{1,3}(?:-[0-9a-z]{1,3})?)(?:/([0-9]{1,3}))?$');
        if v_match is null then
            raise exception '% "%" is not a value, a range or a step (like 5, 1-5, */15 or 0-30/10)', p_field, v_part
                using errcode = '22023';
        end if;
        v_step := coalesce(v_match[2]::integer, 1);
        if v_step < 1 then
            raise exception '% "%": the step must be at least 1', p_field, v_part using errcode = '22023';
        end if;
        if v_match[1] = '*' then
            v_start := p_low;
            v_end := p_high;
        else
            v_bounds := string_to_array(v_match[1], '-');
            v_ends := '{}';
            foreach v_token in array v_bounds loop
                if v_token ~ '^[0-9]+$' then
                    v_ends := v_ends || v_token::integer;
                else
                    v_position := array_position(p_names, v_token);
                    if v_position is null then
                        raise exception '% "%": "%" is not a number%', p_field, v_part, v_token,
                            case when p_names is null then '' else ' or a name (' || array_to_string(p_names, ', ') || ')' end
                            using errcode = '22023';
                    end if;
                    v_ends := v_ends || (p_low + v_position - 1);
                end if;
            end loop;
            v_start := v_ends[1];
            v_end := case when cardinality(v_ends) = 2 then v_ends[2]
                          when v_match[2] is not null then p_high
                          else v_start end;
        end if;
        if v_start < p_low or v_end > p_high or v_start > p_high or v_end < p_low then
            raise exception '% "%" is outside %-%', p_field, v_part, p_low, p_high using errcode = '22023';
        end if;
        if v_start > v_end then
            raise exception '% "%": a range runs from low to high', p_field, v_part using errcode = '22023';
        end if;
        v_values := v_values || array(select generate_series(v_start, v_end, v_step));
    end loop;
    return array(select distinct v from unnest(v_values) v order by v);
end
$function$;
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_cron_next(p_cron text, p_after timestamp with time zone DEFAULT now())
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
 SET search_path TO 'public', 'pg_temp'
AS $function$
declare
    v_fields text[];
    v_minutes integer[];
    v_hours integer[];
    v_days integer[];
    v_months integer[];
    v_weekdays integer[];
    v_either_day boolean;
    v_t timestamp;  -- the UTC wall clock: no time zone, so no DST
    v_horizon timestamp;
    v_day_ok boolean;
    v_next integer;
begin
    if p_after is null then
        raise exception 'job_queue_cron_next needs a time to start from' using errcode = '22004';
    end if;
    v_fields := regexp_split_to_array(btrim(coalesce(p_cron, '')), '\s+');
    if cardinality(v_fields) <> 5 or v_fields[1] = '' then
        raise exception 'cron "%" must have five fields: minute hour day-of-month month day-of-week (UTC)',
            coalesce(p_cron, '') using errcode = '22023';
    end if;
    begin
        v_minutes := job_queue_cron_field(v_fields[1], 0, 59, 'minute');
        v_hours := job_queue_cron_field(v_fields[2], 0, 23, 'hour');
        v_days := job_queue_cron_field(v_fields[3], 1, 31, 'day of month');
        v_months := job_queue_cron_field(v_fields[4], 1, 12, 'month',
            array['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec']);
        v_weekdays := job_queue_cron_field(v_fields[5], 0, 7, 'day of week',
            array['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat']);
    exception when invalid_parameter_value then
        raise exception 'cron "%": %', p_cron, sqlerrm using errcode = '22023';
    end;
    v_weekdays := array(select distinct d % 7 from unnest(v_weekdays) d order by 1);
    v_either_day := left(v_fields[3], 1) <> '*' and left(v_fields[5], 1) <> '*';

    v_t := date_trunc('minute', p_after at time zone 'UTC') + interval '1 minute';
    -- Any satisfiable expression matches within 8 years (29 February skips 2100).
    v_horizon := v_t + interval '10 years';
    loop
        if v_t > v_horizon then
            raise exception 'cron "%" matches no date (like 30 February)', p_cron using errcode = '22023';
        end if;
        if not extract(month from v_t)::integer = any (v_months) then
            v_t := date_trunc('month', v_t) + interval '1 month';
            continue;
        end if;
        if v_either_day then
            v_day_ok := extract(day from v_t)::integer = any (v_days) or extract(dow from v_t)::integer = any (v_weekdays);
        else
            v_day_ok := extract(day from v_t)::integer = any (v_days) and extract(dow from v_t)::integer = any (v_weekdays);
        end if;
        if not v_day_ok then
            v_t := date_trunc('day', v_t) + interval '1 day';
            continue;
        end if;
        if not extract(hour from v_t)::integer = any (v_hours) then
            select min(h) into v_next from unnest(v_hours) h where h > extract(hour from v_t)::integer;
            v_t := date_trunc('day', v_t) + coalesce(make_interval(hours => v_next), interval '1 day');
            continue;
        end if;
        if not extract(minute from v_t)::integer = any (v_minutes) then
            select min(m) into v_next from unnest(v_minutes) m where m > extract(minute from v_t)::integer;
            v_t := date_trunc('hour', v_t) + coalesce(make_interval(mins => v_next), interval '1 hour');
            continue;
        end if;
        return v_t at time zone 'UTC';
    end loop;
end
$function$;
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_cron_problem(p_cron text)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
 SET search_path TO 'public', 'pg_temp'
AS $function$
begin
    perform job_queue_cron_next(p_cron, timestamptz '2000-01-01 00:00:00+00');
    return null;
exception when invalid_parameter_value or null_value_not_allowed then
    return sqlerrm;
end
$function$;
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_delete(p_id uuid)
 RETURNS TABLE(id uuid, task_type text, status text, deleted boolean)
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
begin
    return query
        delete from job_queue j
         where j.id = p_id and j.status <> 'processing'
        returning j.id, j.task_type, j.status, true;
    if found then
        return;
    end if;
    return query
        select j.id, j.task_type, j.status, false from job_queue j where j.id = p_id;
end
$function$;
comment on function job_queue_delete(uuid) is 'Delete a job that is not processing; answers (id, task_type, status, deleted), or no row when no job has the id.';
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_enqueue(p_task_type text, p_payload jsonb DEFAULT '{}'::jsonb, p_run_at timestamp with time zone DEFAULT now(), p_max_attempts integer DEFAULT 5, p_dedupe_key text DEFAULT NULL::text)
 RETURNS uuid
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
declare
    v_id uuid;
begin
    if p_dedupe_key is not null then
        select e.job_id into v_id
          from job_queue_enqueue_unique(p_task_type, p_payload, p_dedupe_key, p_run_at, p_max_attempts) e;
        return v_id;
    end if;
    insert into job_queue (task_type, payload, run_at, max_attempts)
    values (p_task_type, coalesce(p_payload, '{}'::jsonb), coalesce(p_run_at, now()), coalesce(p_max_attempts, 5))
    returning id into v_id;
    return v_id;
end
$function$;
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_enqueue_batch(p_task_type text, p_payloads jsonb[], p_run_at timestamp with time zone DEFAULT now(), p_max_attempts integer DEFAULT 5)
 RETURNS SETOF uuid
 LANGUAGE sql
 SET search_path TO 'public', 'pg_temp'
AS $function$
    insert into job_queue (task_type, payload, run_at, max_attempts)
    select p_task_type, coalesce(p.payload, '{}'::jsonb), coalesce(p_run_at, now()), coalesce(p_max_attempts, 5)
      from unnest(p_payloads) with ordinality as p(payload, n)
     order by p.n
    returning id
$function$;
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_enqueue_due_schedules()
 RETURNS TABLE(schedule_name text, job_id uuid, deduplicated boolean, error text)
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
declare
    s record;
    e record;
begin
    for s in
        select sc.name, sc.task_type, sc.payload, sc.cron
          from job_queue_schedules sc
         where sc.enabled and sc.next_run_at <= now()
         order by sc.next_run_at
         for update skip locked
    loop
        begin
            select u.job_id, u.deduplicated into e
              from job_queue_enqueue_unique(s.task_type, s.payload, job_queue_payload_key(s.payload)) u;
            update job_queue_schedules sc
               set next_run_at = job_queue_cron_next(s.cron, now()),
                   last_enqueued_at = now(),
                   last_job_id = e.job_id,
                   updated_at = now()
             where sc.name = s.name;
            return query select s.name, e.job_id, e.deduplicated, null::text;
        exception when others then
            raise warning 'job queue schedule % was not enqueued (left due): %', s.name, sqlerrm;
            return query select s.name, null::uuid, null::boolean, sqlerrm;
        end;
    end loop;
end
$function$;
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_enqueue_unique(p_task_type text, p_payload jsonb, p_dedupe_key text, p_run_at timestamp with time zone DEFAULT now(), p_max_attempts integer DEFAULT 5)
 RETURNS TABLE(job_id uuid, deduplicated boolean)
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
declare
    v_id uuid;
begin
    if p_dedupe_key is null then
        raise exception 'job_queue_enqueue_unique needs a dedupe key' using errcode = '22004';
    end if;
    -- The loop closes a race: the live job we collided with may finish between
    -- our insert and our lookup, in which case we insert again.
    for i in 1..5 loop
        insert into job_queue (task_type, payload, run_at, max_attempts, dedupe_key)
        values (p_task_type, coalesce(p_payload, '{}'::jsonb), coalesce(p_run_at, now()),
                coalesce(p_max_attempts, 5), p_dedupe_key)
        on conflict (task_type, dedupe_key)
            where dedupe_key is not null and status in ('pending', 'processing')
            do nothing
        returning id into v_id;
        if v_id is not null then
            return query select v_id, false;
            return;
        end if;
        select j.id into v_id
          from job_queue j
         where j.task_type = p_task_type
           and j.dedupe_key = p_dedupe_key
           and j.status in ('pending', 'processing');
        if v_id is not null then
            return query select v_id, true;
            return;
        end if;
    end loop;
    raise exception 'could not enqueue % with dedupe key %: contention', p_task_type, p_dedupe_key
        using errcode = '40001';
end
$function$;
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_fanout_admit(p_max_parallel integer, p_generation integer, p_max_generations integer, p_chain_started_at timestamp with time zone, p_max_chain interval)
 RETURNS TABLE(admitted boolean, reason text, live_invocations integer)
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
declare
    v_live integer;
    v_enabled boolean;
begin
    if p_max_parallel is null or p_max_parallel < 1 then
        raise exception 'p_max_parallel must be at least 1 (got %)', p_max_parallel using errcode = '22023';
    end if;
    perform pg_advisory_xact_lock(hashtextextended('job_queue_fanout_admit', 0));
    -- Read after the lock: in READ COMMITTED each statement sees what the
    -- admissions before this one committed.
    v_live := job_queue_live_invocations();
    select s.processing_enabled into v_enabled from job_queue_settings s;
    if not coalesce(v_enabled, true) then
        return query select false, 'processing is paused', v_live;
    elsif p_generation is null or p_generation > p_max_generations then
        return query select false, format('the chain reached its generation limit (%s)', p_max_generations), v_live;
    elsif p_chain_started_at is null or now() - p_chain_started_at > p_max_chain then
        return query select false, format('the chain is older than its time limit (%s)', p_max_chain), v_live;
    elsif v_live >= p_max_parallel then
        return query select false, format('%s invocations are running (the limit is %s)', v_live, p_max_parallel),
                            v_live;
    else
        return query select true, null::text, v_live;
    end if;
end
$function$;
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_fanout_slots(p_max_parallel integer)
 RETURNS integer
 LANGUAGE sql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
    select case
               when not s.processing_enabled then 0
               when not exists (select 1 from job_queue j where j.status = 'pending' and j.run_at <= now()) then 0
               else greatest(0, coalesce(p_max_parallel, 1) - job_queue_live_invocations())
           end
      from job_queue_settings s
$function$;
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_health_details(p_overdue_after_seconds double precision, p_limit integer DEFAULT 25)
 RETURNS TABLE(stuck jsonb, overdue jsonb, schedules jsonb, last_sync_run jsonb)
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
declare
    v_limit integer := least(greatest(coalesce(p_limit, 25), 0), 25);
    v_overdue_after interval := make_interval(secs => greatest(coalesce(p_overdue_after_seconds, 0), 0));
begin
    select coalesce(jsonb_agg(jsonb_build_object(
               'id', j.id,
               'taskType', j.task_type,
               'attempts', j.attempts,
               'maxAttempts', j.max_attempts,
               'lockedAt', j.locked_at,
               'leaseExpiresAt', j.lease_expires_at,
               'lastError', left(j.last_error, 1000)
           ) order by j.lease_expires_at, j.id), '[]'::jsonb)
      into stuck
      from (select * from job_queue q
             where q.status = 'processing' and q.lease_expires_at <= now()
             order by q.lease_expires_at, q.id
             limit v_limit) j;

    select coalesce(jsonb_agg(jsonb_build_object(
               'id', j.id,
               'taskType', j.task_type,
               'attempts', j.attempts,
               'runAt', j.run_at,
               'waitSeconds', round(extract(epoch from now() - j.run_at)::numeric, 3)
           ) order by j.run_at, j.id), '[]'::jsonb)
      into overdue
      from (select * from job_queue q
             where q.status = 'pending' and q.run_at <= now() - v_overdue_after
             order by q.run_at, q.id
             limit v_limit) j;

    select coalesce(jsonb_agg(jsonb_build_object(
               'name', s.name,
               'taskType', s.task_type,
               'cron', s.cron,
               'enabled', s.enabled,
               'nextRunAt', s.next_run_at,
               'lastEnqueuedAt', s.last_enqueued_at
           ) order by s.name), '[]'::jsonb)
      into schedules
      from (select * from job_queue_schedules q order by q.name limit v_limit) s;

    select jsonb_build_object(
               'id', r.id,
               'status', r.status,
               'coachId', r.coach_id,
               'jobId', r.job_id,
               'fullSync', r.full_sync,
               'invocations', r.invocations,
               'counts', r.counts,
               'error', left(r.error, 1000),
               'startedAt', r.started_at,
               'updatedAt', r.updated_at,
               'finishedAt', r.finished_at
           )
      into last_sync_run
      from game_platform_sync_runs r
     order by r.id desc
     limit 1;

    return next;
end
$function$;
comment on function job_queue_health_details(double precision,integer) is 'The health panel''s bounded lists: stuck and overdue jobs, schedules, the last Game Platform sync run.';
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_health_snapshot(p_recent integer DEFAULT 10)
 RETURNS TABLE(checked_at timestamp with time zone, processing_enabled boolean, paused_reason text, settings_updated_at timestamp with time zone, pending bigint, processing bigint, succeeded bigint, failed bigint, cancelled bigint, due_pending bigint, oldest_due_pending_age_seconds double precision, stuck_jobs bigint, failed_last_24h bigint, last_run_at timestamp with time zone, last_run_age_seconds double precision, recent_runs jsonb, recent_jobs jsonb)
 LANGUAGE sql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
    select
        now(),
        s.processing_enabled,
        s.paused_reason,
        s.updated_at,
        -- One count per status rather than a GROUP BY: each is an index-only scan
        -- of its own (partial) index, where a GROUP BY would read the whole table.
        (select count(*) from job_queue j where j.status = 'pending'),
        (select count(*) from job_queue j where j.status = 'processing'),
        (select count(*) from job_queue j where j.status = 'succeeded'),
        (select count(*) from job_queue j where j.status = 'failed'),
        (select count(*) from job_queue j where j.status = 'cancelled'),
        due.n,
        extract(epoch from now() - due.oldest_run_at)::double precision,
        -- Processing past the lease: the worker holding it died (the next claim
        -- will take it over, but until a worker runs nobody does).
        (select count(*) from job_queue j where j.status = 'processing' and j.lease_expires_at <= now()),
        (select count(*) from job_queue j
          where j.status = 'failed' and j.completed_at >= now() - interval '24 hours'),
        runs.last_run_at,
        extract(epoch from now() - runs.last_run_at)::double precision,
        coalesce((
            select jsonb_agg(to_jsonb(r) order by r.started_at desc, r.id desc)
              from (select r.id, r.trigger_source, r.status, r.requested_limit, r.forced, r.claimed,
                           r.processed, r.succeeded, r.failed, r.released, left(r.error, 1000) as error,
                           r.started_at, r.finished_at, r.duration_ms
                      from job_queue_invocations r
                     order by r.started_at desc, r.id desc
                     limit greatest(coalesce(p_recent, 10), 0)) r
        ), '[]'::jsonb),
        coalesce((
            select jsonb_agg(to_jsonb(j) order by j.created_at desc, j.id desc)
              from (select j.id, j.task_type, j.status, j.attempts, j.max_attempts,
                           left(j.last_error, 1000) as last_error, j.run_at, j.created_at,
                           j.updated_at, j.completed_at
                      from job_queue j
                     order by j.created_at desc, j.id desc
                     limit greatest(coalesce(p_recent, 10), 0)) j
        ), '[]'::jsonb)
      from job_queue_settings s
     cross join lateral (
        select count(*) as n, min(j.run_at) as oldest_run_at
          from job_queue j
         where j.status = 'pending' and j.run_at <= now()
     ) due
     cross join lateral (
        select max(r.started_at) as last_run_at from job_queue_invocations r
     ) runs
$function$;
comment on function job_queue_health_snapshot(integer) is 'Counts, ages and recent history for /api/admin/job-queue/health and the operator CLI, in one call.';
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_install_schedules()
 RETURNS TABLE(job_name text, schedule text, scheduled boolean, note text)
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
declare
    d record;
    v_has_pg_net boolean;
begin
    if not exists (select from pg_extension where extname = 'pg_cron') then
        raise notice 'job queue schedules: pg_cron is not installed in database %, so nothing was scheduled. '
            'Enable pg_cron (Supabase: Database > Extensions), then run: select * from job_queue_install_schedules();',
            current_database();
        return;
    end if;

    v_has_pg_net := exists (
            select from pg_proc p join pg_namespace n on n.oid = p.pronamespace
             where n.nspname = 'net' and p.proname = 'http_post')
        and to_regclass('vault.decrypted_secrets') is not null;

    for d in select * from public.job_queue_schedule_definitions() loop
        if d.needs_pg_net and not v_has_pg_net then
            raise notice 'job queue schedules: % not scheduled: it needs pg_net (net.http_post) and Vault (vault.decrypted_secrets).',
                d.job_name;
            return query select d.job_name, d.schedule, false, 'needs pg_net and Vault'::text;
            continue;
        end if;
        perform cron.schedule(d.job_name, d.schedule, d.command);
        return query select d.job_name, d.schedule, true, d.description;
    end loop;
end
$function$;
comment on function job_queue_install_schedules() is 'Create or replace the job queue''s pg_cron jobs from job_queue_schedule_definitions(). Safe to run again.';
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_live_invocations()
 RETURNS integer
 LANGUAGE sql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
    select count(*)::integer
      from job_queue_invocations r
     where r.status = 'running' and r.started_at > now() - interval '1 hour'
$function$;
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_mark_failed(p_id uuid, p_error text, p_retry_in interval DEFAULT NULL::interval, p_lease_token uuid DEFAULT NULL::uuid)
 RETURNS TABLE(id uuid, status text, attempts integer, max_attempts integer, run_at timestamp with time zone, last_error text)
 LANGUAGE sql
 SET search_path TO 'public', 'pg_temp'
AS $function$
    update job_queue j
       set status = case when p_retry_in is not null and j.attempts < j.max_attempts
                         then 'pending' else 'failed' end,
           run_at = case when p_retry_in is not null and j.attempts < j.max_attempts
                         then now() + greatest(p_retry_in, interval '0') else j.run_at end,
           completed_at = case when p_retry_in is not null and j.attempts < j.max_attempts
                               then null else now() end,
           last_error = left(coalesce(p_error, 'unknown error'), 20000),
           updated_at = now(),
           lease_token = null,
           lease_expires_at = null
     where j.id = p_id
       and j.status = 'processing'
       and (p_lease_token is null or j.lease_token = p_lease_token)
    returning j.id, j.status, j.attempts, j.max_attempts, j.run_at, j.last_error
$function$;
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_mark_succeeded(p_id uuid, p_output jsonb DEFAULT NULL::jsonb, p_lease_token uuid DEFAULT NULL::uuid)
 RETURNS TABLE(id uuid, status text, attempts integer, max_attempts integer, run_at timestamp with time zone, last_error text)
 LANGUAGE sql
 SET search_path TO 'public', 'pg_temp'
AS $function$
    update job_queue j
       set status = 'succeeded',
           output = p_output,
           last_error = null,
           completed_at = now(),
           updated_at = now(),
           lease_token = null,
           lease_expires_at = null
     where j.id = p_id
       and j.status = 'processing'
       and (p_lease_token is null or j.lease_token = p_lease_token)
    returning j.id, j.status, j.attempts, j.max_attempts, j.run_at, j.last_error
$function$;
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_mark_succeeded_batch(p_ids uuid[], p_outputs jsonb[], p_lease_tokens uuid[])
 RETURNS TABLE(id uuid, status text, attempts integer, max_attempts integer, run_at timestamp with time zone, last_error text)
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
begin
    return query
    update job_queue j
       set status = 'succeeded',
           output = f.output,
           last_error = null,
           completed_at = now(),
           updated_at = now(),
           lease_token = null,
           lease_expires_at = null
      from unnest(p_ids, p_outputs, p_lease_tokens) as f(id, output, lease_token)
     where j.id = f.id
       and j.status = 'processing'
       and j.lease_token = f.lease_token
    returning j.id, j.status, j.attempts, j.max_attempts, j.run_at, j.last_error;
end
$function$;
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_payload_key(p_payload jsonb)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
 SET search_path TO 'public', 'pg_temp'
AS $function$
    select md5(coalesce(p_payload, '{}'::jsonb)::text)
$function$;
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_release(p_id uuid, p_lease_token uuid DEFAULT NULL::uuid, p_delay interval DEFAULT NULL::interval)
 RETURNS boolean
 LANGUAGE sql
 SET search_path TO 'public', 'pg_temp'
AS $function$
    with released as (
        update job_queue j
           set status = 'pending',
               attempts = greatest(j.attempts - 1, 0),
               run_at = case when p_delay is null then j.run_at else now() + p_delay end,
               updated_at = now(),
               locked_at = null,
               lease_token = null,
               lease_expires_at = null
         where j.id = p_id
           and j.status = 'processing'
           and (p_lease_token is null or j.lease_token = p_lease_token)
        returning 1
    )
    select exists (select from released)
$function$;
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_retry(p_id uuid)
 RETURNS TABLE(id uuid, status text, previous_status text, changed boolean, duplicate_of uuid)
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
declare
    v_job job_queue;
    v_twin uuid;
begin
    select * into v_job from job_queue j where j.id = p_id for update;
    if not found then
        return;
    end if;
    if v_job.status not in ('failed', 'cancelled', 'pending') then
        return query select p_id, v_job.status, v_job.status, false, null::uuid;
        return;
    end if;
    for i in 1..5 loop
        if v_job.dedupe_key is not null and v_job.status <> 'pending' then
            select j.id into v_twin from job_queue j
             where j.task_type = v_job.task_type and j.dedupe_key = v_job.dedupe_key
               and j.status in ('pending', 'processing') and j.id <> p_id
             limit 1;
            if v_twin is not null then
                return query select p_id, v_job.status, v_job.status, false, v_twin;
                return;
            end if;
        end if;
        begin
            update job_queue j
               set status = 'pending',
                   run_at = now(),
                   max_attempts = greatest(j.max_attempts, j.attempts + 1),
                   completed_at = null,
                   updated_at = now(),
                   locked_at = null,
                   lease_token = null,
                   lease_expires_at = null
             where j.id = p_id;
            return query select p_id, 'pending'::text, v_job.status, true, null::uuid;
            return;
        exception when unique_violation then
            null;  -- an equal job went live after the check: look again
        end;
    end loop;
    raise exception 'could not retry job %: an equal job keeps starting and finishing', p_id
        using errcode = '40001';
end
$function$;
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_schedule_definitions()
 RETURNS TABLE(job_name text, schedule text, command text, needs_pg_net boolean, description text)
 LANGUAGE sql
 IMMUTABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
    values
    (
        -- Drains the queue (and so keeps the schedules) from the database side,
        -- e.g. on Vercel Hobby where Vercel Cron may run only once a day. pg_net
        -- POSTs asynchronously after the transaction commits; the worker keeps
        -- running after pg_net's timeout. Until both Vault secrets exist the
        -- command sends nothing.
        'job-queue-worker-ping',
        '*/5 * * * *',
        $cmd$select net.http_post(url := s.endpoint, body := '{}'::jsonb, headers := jsonb_build_object('Content-Type', 'application/json', 'x-job-runner-secret', s.secret), timeout_milliseconds := 5000) as request_id from (select (select decrypted_secret from vault.decrypted_secrets where name = 'job_queue_worker_endpoint') as endpoint, (select decrypted_secret from vault.decrypted_secrets where name = 'job_queue_runner_secret') as secret) s where s.endpoint is not null and s.secret is not null$cmd$,
        true,
        'Every 5 minutes: POST the worker (Vault secrets job_queue_worker_endpoint, job_queue_runner_secret) with x-job-runner-secret. Needs pg_net and Vault.'
    )
$function$;
comment on function job_queue_schedule_definitions() is 'The Supabase schedules of the job queue: pg_cron job name, cron expression (UTC), SQL command.';
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_schedule_run_now(p_name text)
 RETURNS TABLE(job_id uuid, deduplicated boolean)
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
declare
    s job_queue_schedules;
    e record;
begin
    select * into s from job_queue_schedules sc where sc.name = p_name for update;
    if not found then
        return;
    end if;
    select u.job_id, u.deduplicated into e
      from job_queue_enqueue_unique(s.task_type, s.payload, job_queue_payload_key(s.payload)) u;
    update job_queue_schedules sc
       set last_enqueued_at = now(), last_job_id = e.job_id, updated_at = now()
     where sc.name = p_name;
    return query select e.job_id, e.deduplicated;
end
$function$;
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_schedule_save(p_name text, p_task_type text DEFAULT NULL::text, p_payload jsonb DEFAULT NULL::jsonb, p_cron text DEFAULT NULL::text, p_enabled boolean DEFAULT NULL::boolean)
 RETURNS SETOF job_queue_schedules
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
declare
    s job_queue_schedules;
begin
    select * into s from job_queue_schedules sc where sc.name = p_name for update;
    if not found then
        if p_task_type is null then
            return;
        end if;
        if p_cron is null then
            raise exception 'a new schedule needs a cron expression' using errcode = '22023';
        end if;
        return query
        insert into job_queue_schedules (name, task_type, payload, cron, enabled, next_run_at)
        values (p_name, p_task_type, coalesce(p_payload, '{}'::jsonb), p_cron, coalesce(p_enabled, true),
                job_queue_cron_next(p_cron, now()))
        returning *;
        return;
    end if;
    return query
    update job_queue_schedules sc
       set payload = coalesce(p_payload, sc.payload),
           cron = coalesce(p_cron, sc.cron),
           enabled = coalesce(p_enabled, sc.enabled),
           next_run_at = case
               when (p_cron is not null and p_cron <> sc.cron) or (p_enabled and not sc.enabled)
               then job_queue_cron_next(coalesce(p_cron, sc.cron), now())
               else sc.next_run_at end,
           updated_at = now()
     where sc.name = p_name
    returning sc.*;
end
$function$;
-- privileges: service_role: EXECUTE

CREATE OR REPLACE FUNCTION public.job_queue_set_processing(p_enabled boolean, p_reason text DEFAULT NULL::text)
 RETURNS SETOF job_queue_settings
 LANGUAGE sql
 SET search_path TO 'public', 'pg_temp'
AS $function$
    update job_queue_settings s
       set processing_enabled = p_enabled,
           paused_reason = case when p_enabled then null else nullif(btrim(p_reason), '') end,
           updated_at = now()
     where s.id
    returning s.*
$function$;
-- privileges: service_role: EXECUTE
