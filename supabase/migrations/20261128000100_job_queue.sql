-- The job queue: tables, indexes and every function that decides queue behaviour.
--
-- The Python bundle calls these functions by name and never writes queue SQL of
-- its own, so "what happens when a job fails" is answered by reading one function.
-- Every function is callable only by the service role / the bundle's own
-- connection: Supabase exposes `public` through its REST API, so execute is
-- revoked from public, anon and authenticated, and RLS is on for every table.

-- ---------------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------------

create table if not exists public.job_queue (
    id uuid primary key default gen_random_uuid(),
    task_type text not null check (length(task_type) between 1 and 200),
    payload jsonb not null default '{}'::jsonb,
    status text not null default 'pending'
        check (status in ('pending', 'processing', 'succeeded', 'failed', 'cancelled')),
    run_at timestamptz not null default now(),
    attempts integer not null default 0 check (attempts >= 0),
    max_attempts integer not null default 5 check (max_attempts >= 1),
    last_error text,
    output jsonb,
    -- Equal jobs share a dedupe key; at most one of them is pending or processing.
    dedupe_key text,
    -- Fencing: each claim stamps a fresh token; a finish that quotes an old token
    -- (the lease was taken over, or the job was cancelled) changes nothing.
    lease_token uuid,
    locked_at timestamptz,
    lease_expires_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    completed_at timestamptz
);

comment on table public.job_queue is
    'Background jobs drained by /api/jobs/run. Change rows only through the job_queue_* functions.';

-- The claim reads only these two partial indexes, so its cost does not grow with
-- the number of finished jobs (not in either index) or future jobs (past the
-- `run_at <= now()` end of the ordered scan).
create index if not exists job_queue_pending_run_at_idx
    on public.job_queue (run_at) where status = 'pending';
create index if not exists job_queue_processing_lease_idx
    on public.job_queue (lease_expires_at) where status = 'processing';
-- One live job per dedupe key: this is what makes concurrent equal triggers safe.
create unique index if not exists job_queue_live_dedupe_key_idx
    on public.job_queue (task_type, dedupe_key)
    where dedupe_key is not null and status in ('pending', 'processing');
-- Admin listing (newest first, keyset) and the retention sweep.
create index if not exists job_queue_created_idx
    on public.job_queue (created_at desc, id desc);
create index if not exists job_queue_status_created_idx
    on public.job_queue (status, created_at desc, id desc);
create index if not exists job_queue_task_type_created_idx
    on public.job_queue (task_type, created_at desc, id desc);
create index if not exists job_queue_finished_idx
    on public.job_queue (completed_at)
    where status in ('succeeded', 'failed', 'cancelled');

create table if not exists public.job_queue_settings (
    -- A constant primary key keeps this table at exactly one row.
    id boolean primary key default true check (id),
    processing_enabled boolean not null default true,
    paused_reason text,
    updated_at timestamptz not null default now()
);

insert into public.job_queue_settings (id) values (true) on conflict (id) do nothing;

comment on table public.job_queue_settings is
    'The queue''s global pause switch (one row). The worker reads it on every call.';

-- One row per worker invocation, so the health report can say when the worker last ran.
create table if not exists public.job_queue_invocations (
    id bigint generated always as identity primary key,
    trigger_source text not null,
    status text not null default 'running'
        check (status in ('running', 'completed', 'paused', 'failed')),
    requested_limit integer,
    forced boolean not null default false,
    claimed integer not null default 0,
    processed integer not null default 0,
    succeeded integer not null default 0,
    failed integer not null default 0,
    released integer not null default 0,
    error text,
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    duration_ms integer
);

create index if not exists job_queue_invocations_started_idx on public.job_queue_invocations (started_at desc);

alter table public.job_queue enable row level security;
alter table public.job_queue_settings enable row level security;
alter table public.job_queue_invocations enable row level security;

-- ---------------------------------------------------------------------------
-- Enqueue
-- ---------------------------------------------------------------------------

-- The canonical dedupe key of a payload. jsonb prints keys in a canonical order,
-- so equal payloads get equal keys wherever they are enqueued from (the admin
-- endpoints, pg_cron, the CLI).
create or replace function public.job_queue_payload_key(p_payload jsonb)
returns text
language sql
immutable
parallel safe
set search_path = public, pg_temp
as $$
    select md5(coalesce(p_payload, '{}'::jsonb)::text)
$$;

-- Enqueue unless an equal live job exists; says which happened.
create or replace function public.job_queue_enqueue_unique(
    p_task_type text,
    p_payload jsonb,
    p_dedupe_key text,
    p_run_at timestamptz default now(),
    p_max_attempts integer default 5
)
returns table (job_id uuid, deduplicated boolean)
language plpgsql
set search_path = public, pg_temp
as $$
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
$$;

-- The seed's four-argument call always inserts a new job; a dedupe key opts in
-- to deduplication and returns the live equal job's id instead of a new one.
create or replace function public.job_queue_enqueue(
    p_task_type text,
    p_payload jsonb default '{}'::jsonb,
    p_run_at timestamptz default now(),
    p_max_attempts integer default 5,
    p_dedupe_key text default null
)
returns uuid
language plpgsql
set search_path = public, pg_temp
as $$
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
$$;

-- Many jobs of one type in one statement (continuations, bulk triggers).
create or replace function public.job_queue_enqueue_batch(
    p_task_type text,
    p_payloads jsonb[],
    p_run_at timestamptz default now(),
    p_max_attempts integer default 5
)
returns setof uuid
language sql
set search_path = public, pg_temp
as $$
    insert into job_queue (task_type, payload, run_at, max_attempts)
    select p_task_type, coalesce(p.payload, '{}'::jsonb), coalesce(p_run_at, now()), coalesce(p_max_attempts, 5)
      from unnest(p_payloads) with ordinality as p(payload, n)
     order by p.n
    returning id
$$;

-- ---------------------------------------------------------------------------
-- Claim
-- ---------------------------------------------------------------------------

-- Claims up to p_limit due jobs for one worker, oldest due first.
--
-- A job left in `processing` past its lease belongs to a worker that died (most
-- often: killed at the function's time limit). The claim takes it over as a new
-- attempt, or fails it for good when its attempts are spent. SKIP LOCKED lets
-- overlapping workers claim disjoint sets without waiting on each other.
create or replace function public.job_queue_claim(
    p_limit integer,
    p_lease interval default interval '15 minutes'
)
returns setof public.job_queue
language plpgsql
set search_path = public, pg_temp
as $$
declare
    v_reclaimed integer := 0;
begin
    if p_limit is null or p_limit < 1 then
        raise exception 'p_limit must be at least 1 (got %)', p_limit using errcode = '22023';
    end if;
    if p_lease is null or p_lease <= interval '0' then
        raise exception 'p_lease must be a positive interval (got %)', p_lease using errcode = '22023';
    end if;

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
$$;

-- ---------------------------------------------------------------------------
-- Finish: succeeded, failed (with or without retry), released
-- ---------------------------------------------------------------------------
-- Each acts only on a job still in `processing` and, when a lease token is
-- given, still under that token. An empty result means "not yours any more":
-- the job was cancelled, finished, or taken over after its lease expired.

create or replace function public.job_queue_mark_succeeded(
    p_id uuid,
    p_output jsonb default null,
    p_lease_token uuid default null
)
returns table (id uuid, status text, attempts integer, max_attempts integer, run_at timestamptz, last_error text)
language sql
set search_path = public, pg_temp
as $$
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
$$;

-- A NULL p_retry_in fails the job for good; otherwise it goes back to pending at
-- now() + p_retry_in while attempts remain, and fails for good once they are spent.
create or replace function public.job_queue_mark_failed(
    p_id uuid,
    p_error text,
    p_retry_in interval default null,
    p_lease_token uuid default null
)
returns table (id uuid, status text, attempts integer, max_attempts integer, run_at timestamptz, last_error text)
language sql
set search_path = public, pg_temp
as $$
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
$$;

-- Hands a claimed but never started job back: pending again, the attempt not counted.
create or replace function public.job_queue_release(
    p_id uuid,
    p_lease_token uuid default null
)
returns boolean
language sql
set search_path = public, pg_temp
as $$
    with released as (
        update job_queue j
           set status = 'pending',
               attempts = greatest(j.attempts - 1, 0),
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
$$;

-- ---------------------------------------------------------------------------
-- Operator actions: cancel, retry, pause
-- ---------------------------------------------------------------------------

-- Cancels a pending or processing job. A processing job's lease token is cleared,
-- so its worker's later success or failure (which quotes the token) changes nothing.
-- `changed` is false, with the current status, when the job was already finished.
create or replace function public.job_queue_cancel(p_id uuid, p_reason text default null)
returns table (id uuid, status text, previous_status text, changed boolean)
language plpgsql
set search_path = public, pg_temp
as $$
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
$$;

-- Puts a failed, cancelled or pending job back to pending, due now, with at least
-- one attempt left. `changed` is false for a processing or succeeded job, and for
-- one whose equal twin is already live (`duplicate_of` names it).
create or replace function public.job_queue_retry(p_id uuid)
returns table (id uuid, status text, previous_status text, changed boolean, duplicate_of uuid)
language plpgsql
set search_path = public, pg_temp
as $$
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
    if v_job.dedupe_key is not null and v_job.status <> 'pending' then
        select j.id into v_twin from job_queue j
         where j.task_type = v_job.task_type and j.dedupe_key = v_job.dedupe_key
           and j.status in ('pending', 'processing') and j.id <> p_id;
        if v_twin is not null then
            return query select p_id, v_job.status, v_job.status, false, v_twin;
            return;
        end if;
    end if;
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
end
$$;

create or replace function public.job_queue_set_processing(p_enabled boolean, p_reason text default null)
returns setof public.job_queue_settings
language sql
set search_path = public, pg_temp
as $$
    update job_queue_settings s
       set processing_enabled = p_enabled,
           paused_reason = case when p_enabled then null else nullif(btrim(p_reason), '') end,
           updated_at = now()
     where s.id
    returning s.*
$$;

-- ---------------------------------------------------------------------------
-- Worker runs
-- ---------------------------------------------------------------------------

-- Records the start of a worker invocation and returns the pause switch in the
-- same round trip.
create or replace function public.job_queue_record_invocation_start(
    p_trigger_source text,
    p_limit integer default null,
    p_forced boolean default false
)
returns table (invocation_id bigint, processing_enabled boolean, paused_reason text)
language sql
set search_path = public, pg_temp
as $$
    with run as (
        insert into job_queue_invocations (trigger_source, requested_limit, forced)
        values (coalesce(p_trigger_source, 'unknown'), p_limit, coalesce(p_forced, false))
        returning job_queue_invocations.id
    )
    select run.id, s.processing_enabled, s.paused_reason
      from run cross join job_queue_settings s
$$;

create or replace function public.job_queue_record_invocation_end(
    p_invocation_id bigint,
    p_status text,
    p_claimed integer default 0,
    p_processed integer default 0,
    p_succeeded integer default 0,
    p_failed integer default 0,
    p_released integer default 0,
    p_error text default null
)
returns void
language sql
set search_path = public, pg_temp
as $$
    update job_queue_invocations r
       set status = p_status,
           claimed = p_claimed,
           processed = p_processed,
           succeeded = p_succeeded,
           failed = p_failed,
           released = p_released,
           error = left(p_error, 20000),
           finished_at = clock_timestamp(),
           duration_ms = (extract(epoch from clock_timestamp() - r.started_at) * 1000)::integer
     where r.id = p_invocation_id
$$;

-- ---------------------------------------------------------------------------
-- Retention
-- ---------------------------------------------------------------------------

-- Deletes finished jobs and worker runs older than p_older_than, p_batch_size rows
-- per statement and at most p_max_batches statements per table, so one call never
-- holds many locks or bloats WAL. Returns how many rows it removed; call again
-- while it returns a full count.
create or replace function public.job_queue_cleanup(
    p_older_than interval default interval '30 days',
    p_batch_size integer default 1000,
    p_max_batches integer default 50
)
returns integer
language plpgsql
set search_path = public, pg_temp
as $$
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
$$;

-- ---------------------------------------------------------------------------
-- Privileges
-- ---------------------------------------------------------------------------

revoke all on table public.job_queue, public.job_queue_settings, public.job_queue_invocations
    from public, anon, authenticated;
grant select, insert, update, delete on table public.job_queue, public.job_queue_settings, public.job_queue_invocations
    to service_role;

do $$
declare
    f regprocedure;
begin
    for f in
        select p.oid::regprocedure
          from pg_proc p
          join pg_namespace n on n.oid = p.pronamespace
         where n.nspname = 'public' and p.proname like 'job\_queue\_%'
    loop
        execute format('revoke execute on function %s from public, anon, authenticated', f);
        execute format('grant execute on function %s to service_role', f);
    end loop;
end
$$;
