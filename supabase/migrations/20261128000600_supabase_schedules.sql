-- Supabase scheduling, optional: pg_cron + pg_net ping the worker (Vault holds
-- its URL and secret), e.g. where Vercel Cron may run only once a day.
--
-- What runs when is not pg_cron's business: recurring jobs are rows of
-- `job_queue_schedules` (20261128000200_job_queue_schedules.sql), enqueued by
-- every worker invocation. pg_cron's one job is to make such invocations
-- happen. It is listed in `job_queue_schedule_definitions()`, which
-- `job_queue_install_schedules()` hands to pg_cron.
--
-- Where pg_cron cannot be had (plain PostgreSQL, the embedded test server, a
-- database other than `cron.database_name`) this migration creates the two
-- functions, schedules nothing and says so with a NOTICE. After enabling
-- pg_cron later, run `select * from job_queue_install_schedules();` once.

create or replace function public.job_queue_schedule_definitions()
returns table (job_name text, schedule text, command text, needs_pg_net boolean, description text)
language sql
immutable
set search_path = public, pg_temp
as $defs$
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
$defs$;

comment on function public.job_queue_schedule_definitions() is
    'The Supabase schedules of the job queue: pg_cron job name, cron expression (UTC), SQL command.';

-- Schedules every definition whose requirements exist, replacing a pg_cron job
-- of the same name (cron.schedule upserts by name), so running it again is how
-- a changed schedule is applied. Returns one row per definition saying what it did.
create or replace function public.job_queue_install_schedules()
returns table (job_name text, schedule text, scheduled boolean, note text)
language plpgsql
set search_path = public, pg_temp
as $$
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
$$;

comment on function public.job_queue_install_schedules() is
    'Create or replace the job queue''s pg_cron jobs from job_queue_schedule_definitions(). Safe to run again.';

-- Try to enable pg_cron where the server offers it. CREATE EXTENSION fails, and
-- is rolled back to this block, where pg_cron is not installed, not in
-- shared_preload_libraries, or this is not cron.database_name.
do $$
begin
    if not exists (select from pg_extension where extname = 'pg_cron') then
        begin
            create extension if not exists pg_cron;
        exception when others then
            raise notice 'job queue schedules: pg_cron is unavailable here (%).', sqlerrm;
        end;
    end if;
end
$$;

select * from public.job_queue_install_schedules();
