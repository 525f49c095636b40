-- Schedules inside the queue: every worker invocation enqueues what is due.
--
-- Recurring jobs are rows of `job_queue_schedules`, evaluated by
-- `job_queue_begin_invocation` (20261128000100_job_queue.sql) — the first
-- statement of every /api/jobs/run invocation, paused or not — so whatever
-- calls the worker (Vercel Cron, the pg_net ping of
-- 20261128000600_supabase_schedules.sql, an external pinger, a kick after a
-- trigger) also keeps the schedules. A schedule that comes due enqueues one
-- job, deduplicated against a live equal job exactly as the admin triggers
-- are, and moves to its next slot after now: a slot missed while nothing called
-- the worker is not made up (no backfill).
--
-- Cron expressions are five fields (minute hour day-of-month month day-of-week),
-- evaluated in UTC, with Vixie cron's rules; `job_queue_cron_next` is the one
-- definition, and the admin API and the CLI validate through it.

-- ---------------------------------------------------------------------------
-- Cron evaluation (UTC)
-- ---------------------------------------------------------------------------

-- The values one cron field allows, ascending. A field is a comma-separated
-- list of parts; a part is `*`, a value, a range `a-b`, any of those with a step
-- `/n`, or a value with a step (`5/15` = `5-<max>/15`, as cronie and most
-- parsers read it). Month and weekday fields also take three-letter names
-- (jan..dec, sun..sat), case-insensitive. Anything else raises 22023 with a
-- sentence naming the field.
create or replace function public.job_queue_cron_field(
    p_text text,
    p_low integer,
    p_high integer,
    p_field text,
    p_names text[] default null
)
returns integer[]
language plpgsql
immutable
parallel safe
set search_path = public, pg_temp
as $$
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
$$;

-- The first minute strictly after p_after that the expression matches, in UTC.
-- Day of month and day of week combine as in Vixie cron: when either field
-- starts with `*`, both must match; when both are restricted, either matching
-- is enough (`0 0 1 * mon` runs on the 1st and on every Monday). Day of week 0
-- and 7 are both Sunday. An expression no date satisfies (`0 0 30 2 *`) raises.
create or replace function public.job_queue_cron_next(p_cron text, p_after timestamptz default now())
returns timestamptz
language plpgsql
immutable
parallel safe
set search_path = public, pg_temp
as $$
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
$$;

-- NULL when the expression is valid, else the sentence saying what is wrong.
-- The schedules table checks it, and the API and the CLI ask it before saving.
create or replace function public.job_queue_cron_problem(p_cron text)
returns text
language plpgsql
immutable
parallel safe
set search_path = public, pg_temp
as $$
begin
    perform job_queue_cron_next(p_cron, timestamptz '2000-01-01 00:00:00+00');
    return null;
exception when invalid_parameter_value or null_value_not_allowed then
    return sqlerrm;
end
$$;

-- ---------------------------------------------------------------------------
-- The schedules
-- ---------------------------------------------------------------------------

create table if not exists public.job_queue_schedules (
    name text primary key check (name ~ '^[a-z0-9][a-z0-9_.:-]{0,99}$'),
    task_type text not null check (length(task_type) between 1 and 200),
    -- Stored as the task's payload model dumps it (every key, defaults filled
    -- in), so a scheduled job and an equal manual trigger share one dedupe key.
    payload jsonb not null default '{}'::jsonb check (jsonb_typeof(payload) = 'object'),
    cron text not null check (job_queue_cron_problem(cron) is null),
    enabled boolean not null default true,
    next_run_at timestamptz not null,
    last_enqueued_at timestamptz,
    -- The job the last evaluation enqueued, or the live equal job it found.
    last_job_id uuid,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

comment on table public.job_queue_schedules is
    'Recurring jobs: every /api/jobs/run invocation enqueues the enabled ones whose next_run_at has passed.';

alter table public.job_queue_schedules enable row level security;

-- What every invocation reads: nothing else when nothing is due.
create index if not exists job_queue_schedules_due_idx
    on public.job_queue_schedules (next_run_at) where enabled;

-- The payloads are the task payload models' defaults as the triggers store them
-- (tests/test_schedules.py checks each against its model).
insert into public.job_queue_schedules (name, task_type, payload, cron, next_run_at)
values
    ('game_platform_sync', 'game_platform_sync',
     '{"dryRun": false, "coachId": null, "forceFullSync": false, "forceFlashCtfSync": false}',
     '*/30 * * * *', public.job_queue_cron_next('*/30 * * * *', now())),
    ('game_platform_totals_sweep', 'game_platform_totals_sweep',
     '{"dryRun": false, "coachId": null, "batchSize": 100, "forceAll": false}',
     '0 * * * *', public.job_queue_cron_next('0 * * * *', now())),
    ('job_queue_cleanup', 'job_queue_cleanup', '{"olderThanDays": 30}',
     '17 3 * * *', public.job_queue_cron_next('17 3 * * *', now()))
on conflict (name) do nothing;

-- Enqueues one job for every enabled schedule that is due and moves each to its
-- next slot after now. Race-safe: overlapping invocations lock disjoint rows
-- (SKIP LOCKED), and a row another invocation has just moved no longer passes
-- `next_run_at <= now()` when it is re-checked under the lock, so each due slot
-- enqueues once. A schedule that fails to enqueue (it should not: the columns
-- are checked) is reported with its error (and a WARNING in the database log)
-- and left due, never failing the invocation that carries it. Nothing due: one
-- index probe, no row locked.
create or replace function public.job_queue_enqueue_due_schedules()
returns table (schedule_name text, job_id uuid, deduplicated boolean, error text)
language plpgsql
set search_path = public, pg_temp
as $$
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
$$;

-- Enqueues a schedule's job now (deduplicated), leaving its next slot alone.
-- No row when no schedule has this name. Runs a disabled schedule too: asking
-- for it by name is the operator's decision.
create or replace function public.job_queue_schedule_run_now(p_name text)
returns table (job_id uuid, deduplicated boolean)
language plpgsql
set search_path = public, pg_temp
as $$
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
$$;

-- Creates a schedule (p_task_type and p_cron given, no schedule of that name)
-- or changes one (NULL arguments keep their value; p_task_type is read only on
-- creation). A new cron expression, or enabling a disabled schedule, sets the
-- next slot from now, so neither fires at once for a slot long past. No row
-- when the schedule does not exist and no task type was given.
create or replace function public.job_queue_schedule_save(
    p_name text,
    p_task_type text default null,
    p_payload jsonb default null,
    p_cron text default null,
    p_enabled boolean default null
)
returns setof public.job_queue_schedules
language plpgsql
set search_path = public, pg_temp
as $$
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
$$;

-- Earlier versions of this bundle enqueued these jobs from pg_cron jobs of
-- these names; where they are still installed, they go, or each job would have
-- two sources. Nothing else of pg_cron's is touched.
do $$
begin
    if to_regclass('cron.job') is not null then
        perform cron.unschedule(j.jobid)
           from cron.job j
          where j.jobname in ('job-queue-game-platform-sync', 'job-queue-game-platform-totals-sweep', 'job-queue-cleanup');
    end if;
end
$$;
