-- The Game Platform as the vendor really behaves (SPEC section 5, "Vendor
-- behaviour to honour"); what the original app learned in production:
--
-- * a 403 on a user's scores means the platform has not approved the user:
--   `game_platform_sync_state.last_result` gains 'not_approved';
-- * solves and flash-CTF events are upserted, the last seen winning, and keep
--   the vendor's item as received in `raw_payload` (the app's report card reads
--   `raw_payload.nist_nice_work_roles`, its flash dashboard the event's
--   `challenge_solves`); events also store `ended_at` and `max_points_possible`;
-- * flash-CTF event ids are the original app's `<name>:<start unix>`, so that
--   adopted rows and new ones agree; rows written as `<start unix>:<name>` by
--   earlier versions of this bundle are renamed;
-- * the vendor's `last_accessed_unix_timestamp` is kept per user.
--
-- Columns are added `if not exists` (the original app's tables have most of
-- them already), constraints are only widened, no row is deleted. Safe to re-run.

alter table public.game_platform_challenge_solves
    add column if not exists raw_payload jsonb,
    -- When the vendor last changed the row (insert time until then).
    add column if not exists updated_at timestamptz not null default now();

alter table public.game_platform_flash_ctf_events
    add column if not exists raw_payload jsonb,
    -- The vendor sends no end time today; stored should it ever send one.
    add column if not exists ended_at timestamptz,
    add column if not exists max_points_possible integer;

alter table public.game_platform_sync_state
    -- The vendor's `last_accessed_unix_timestamp`, the latest seen (the original app's name).
    add column if not exists last_remote_accessed_at timestamptz;

-- Widen `last_result`: whatever check the table has on it (ours, or the
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

-- Event ids `<start unix>:<name>` (this bundle before this migration) become
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

-- The payload options (sync `forceFullSync`, `forceFlashCtfSync`; sweep
-- `forceAll`) are now part of every stored payload, defaults filled in, and
-- whatever enqueues on a schedule must store exactly what the admin triggers
-- store (they deduplicate on it):
-- * schedules kept as rows (`job_queue_schedules`, where that table exists)
--   gain the new keys with their defaults, keeping every value they have;
-- * where pg_cron's commands of 20261128000900_supabase_schedules.sql still
--   enqueue the Game Platform jobs with the old payloads,
--   `job_queue_schedule_definitions()` is redefined whole with the new ones
--   (nothing else changed) and pg_cron's jobs, where pg_cron is installed, are
--   re-installed. Where the definitions no longer enqueue those jobs, they are
--   left as they are.
do $schedules$
begin
    if to_regclass('public.job_queue_schedules') is not null then
        update public.job_queue_schedules
           set payload = '{"forceFullSync": false, "forceFlashCtfSync": false}'::jsonb || payload
         where task_type = 'game_platform_sync'
           and not (payload ? 'forceFullSync' and payload ? 'forceFlashCtfSync');
        update public.job_queue_schedules
           set payload = '{"forceAll": false}'::jsonb || payload
         where task_type = 'game_platform_totals_sweep' and not payload ? 'forceAll';
    end if;

    if to_regprocedure('public.job_queue_schedule_definitions()') is null
       or not exists (
           select 1 from public.job_queue_schedule_definitions() d
            where d.command like '%''{"dryRun": false, "coachId": null}''::jsonb%'
               or d.command like '%''{"dryRun": false, "coachId": null, "batchSize": 100}''::jsonb%')
    then
        return;
    end if;

    execute $redefine$
create or replace function public.job_queue_schedule_definitions()
returns table (job_name text, schedule text, command text, needs_pg_net boolean, description text)
language sql
immutable
set search_path = public, pg_temp
as $defs$
    values
    (
        'job-queue-game-platform-sync',
        '*/30 * * * *',
        $cmd$select job_id, deduplicated from public.job_queue_enqueue_unique('game_platform_sync', '{"dryRun": false, "coachId": null, "forceFullSync": false, "forceFlashCtfSync": false}'::jsonb, public.job_queue_payload_key('{"dryRun": false, "coachId": null, "forceFullSync": false, "forceFlashCtfSync": false}'::jsonb))$cmd$,
        false,
        'Incremental Game Platform sync every 30 minutes (deduplicated against pending/processing equals).'
    ),
    (
        'job-queue-game-platform-totals-sweep',
        '0 * * * *',
        $cmd$select job_id, deduplicated from public.job_queue_enqueue_unique('game_platform_totals_sweep', '{"dryRun": false, "coachId": null, "batchSize": 100, "forceAll": false}'::jsonb, public.job_queue_payload_key('{"dryRun": false, "coachId": null, "batchSize": 100, "forceAll": false}'::jsonb))$cmd$,
        false,
        'Totals sweep of flagged competitors every hour (deduplicated against pending/processing equals).'
    ),
    (
        'job-queue-cleanup',
        '17 3 * * *',
        $cmd$select public.job_queue_cleanup(interval '30 days')$cmd$,
        false,
        'Daily at 03:17 UTC: delete finished jobs and worker runs older than 30 days, in bounded batches.'
    ),
    (
        -- Drains the queue from the database side, e.g. on Vercel Hobby where
        -- Vercel Cron may run only once a day. pg_net POSTs asynchronously after
        -- the transaction commits; the worker keeps running after pg_net's
        -- timeout. Until both Vault secrets exist the command sends nothing.
        'job-queue-worker-ping',
        '*/5 * * * *',
        $cmd$select net.http_post(url := s.endpoint, body := '{}'::jsonb, headers := jsonb_build_object('Content-Type', 'application/json', 'x-job-runner-secret', s.secret), timeout_milliseconds := 5000) as request_id from (select (select decrypted_secret from vault.decrypted_secrets where name = 'job_queue_worker_endpoint') as endpoint, (select decrypted_secret from vault.decrypted_secrets where name = 'job_queue_runner_secret') as secret) s where s.endpoint is not null and s.secret is not null$cmd$,
        true,
        'Every 5 minutes: POST the worker (Vault secrets job_queue_worker_endpoint, job_queue_runner_secret) with x-job-runner-secret. Needs pg_net and Vault.'
    )
$defs$;

comment on function public.job_queue_schedule_definitions() is
    'The Supabase schedules of the job queue: pg_cron job name, cron expression (UTC), SQL command.';
$redefine$;

    if exists (select from pg_extension where extname = 'pg_cron') then
        perform public.job_queue_install_schedules();
    end if;
end
$schedules$;
