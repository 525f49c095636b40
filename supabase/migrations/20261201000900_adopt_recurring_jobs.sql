-- Adopting the original app's database, second part (docs/adoption.md): what
-- needs the bundle's own tables, so it runs after every other migration.
--
-- 1. Recurring jobs (the current app's scheduler: `job_queue` rows with
--    `is_recurring`) become rows of `job_queue_schedules`
--    (20261128000200_job_queue_schedules.sql), where they map: a task type the
--    bundle runs and schedules (game_platform_sync, game_platform_totals_sweep),
--    an interval a five-field cron can say (a divisor of an hour, or whole hours
--    dividing a day), and a payload the task accepts. The first such job of a
--    task type takes over the schedule named after it (its cron and payload
--    replace the seeded ones); a further one gets `<task type>:<job id prefix>`.
--    The converted job is kept, `cancelled`, saying which schedule replaced it.
--    A recurring job that does not map stays a plain job (it runs once, as any
--    due job), with a notice saying why; one past its `expires_at`, which the
--    original app no longer ran, is cancelled.
-- 2. The worker-run history (`job_worker_runs`) is copied into `job_queue_invocations`;
--    `job_worker_runs` itself is left as it is.
-- 3. The solves' work roles, retired flag and flash-CTF event are filled from the
--    vendor items the original app kept in `raw_payload`.
--
-- 20261128000050_adopt_original_app.sql has already checked the shapes (and
-- refused what it does not know), so nothing here refuses a value. On a
-- database that is not the original app's, or one already converted, this
-- changes nothing.

do $recurring$
declare
    j record;
    v_cron text;
    v_payload jsonb;
    v_defaults jsonb;
    v_allowed text[];
    v_why text;
    v_name text;
    v_taken text[] := '{}';
    v_converted integer := 0;
    v_kept integer := 0;
    v_expired integer := 0;
begin
    if to_regclass('public.job_queue') is null or not exists (
        select from pg_attribute
         where attrelid = 'public.job_queue'::regclass and attname = 'is_recurring' and not attisdropped) then
        return;
    end if;
    if to_regclass('public.job_queue_schedules') is null then
        raise exception 'adoption: public.job_queue_schedules does not exist, so the recurring jobs cannot become schedules'
            using hint = 'The migration 20261128000200_job_queue_schedules.sql creates it; apply the migrations in order.';
    end if;

    for j in
        execute $q$
            select id, task_type, payload, status, recurrence_interval_minutes as minutes, expires_at
              from public.job_queue
             where is_recurring and status in ('pending', 'processing')
             order by created_at, id
        $q$
    loop
        if j.expires_at is not null and j.expires_at <= now() then
            execute $u$
                update public.job_queue
                   set status = 'cancelled', completed_at = now(), updated_at = now(),
                       lease_token = null, lease_expires_at = null,
                       last_error = format('adopted: this recurring job expired at %s, so the original app no longer ran it', expires_at)
                 where id = $1
            $u$ using j.id;
            v_expired := v_expired + 1;
            continue;
        end if;

        v_why := null;
        v_cron := case
            when j.minutes between 1 and 59 and 60 % j.minutes = 0 then format('*/%s * * * *', j.minutes)
            when j.minutes = 60 then '0 * * * *'
            when j.minutes = 1440 then '0 0 * * *'
            when j.minutes % 60 = 0 and j.minutes < 1440 and 24 % (j.minutes / 60) = 0
                then format('0 */%s * * *', j.minutes / 60)
        end;
        -- The payloads as the admin triggers store them (every key, defaults filled
        -- in: lib/game_platform/payloads.py), so a scheduled job and an equal
        -- trigger share one dedupe key.
        if j.task_type = 'game_platform_sync' then
            v_defaults := '{"dryRun": false, "coachId": null, "forceFullSync": false, "forceFlashCtfSync": false}';
        elsif j.task_type = 'game_platform_totals_sweep' then
            v_defaults := '{"dryRun": false, "coachId": null, "batchSize": 100, "forceAll": false}';
        else
            v_why := format('the bundle has no task %s', j.task_type);
        end if;
        if v_why is null and v_cron is null then
            v_why := format('every %s minutes has no five-field cron equivalent', j.minutes);
        end if;
        if v_why is null then
            v_allowed := array(select jsonb_object_keys(v_defaults));
            if jsonb_typeof(j.payload) <> 'object'
               or exists (select from jsonb_object_keys(j.payload) k where k <> all (v_allowed)) then
                v_why := format('its payload %s has keys the task does not take (it takes %s)',
                                j.payload, array_to_string(v_allowed, ', '));
            elsif exists (select from jsonb_each(j.payload) p
                           where p.key in ('dryRun', 'forceFullSync', 'forceFlashCtfSync', 'forceAll')
                             and jsonb_typeof(p.value) <> 'boolean')
               or (jsonb_typeof(coalesce(j.payload -> 'coachId', 'null')) <> 'null'
                   and coalesce(j.payload ->> 'coachId', '') !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')
               or (j.payload ? 'batchSize' and (jsonb_typeof(j.payload -> 'batchSize') <> 'number'
                                                or (j.payload ->> 'batchSize') !~ '^[0-9]{1,9}$')) then
                v_why := format('its payload %s has a value the task does not take', j.payload);
            -- A separate test, so the cast only meets digits.
            elsif j.payload ? 'batchSize' and (j.payload ->> 'batchSize')::integer not between 1 and 1000 then
                v_why := format('its payload %s has a batchSize outside 1-1000', j.payload);
            end if;
        end if;
        if v_why is not null then
            raise notice 'adopt recurring job % (%, every % minutes) kept as a plain job, not a schedule: %. It runs once, as any due job; add a schedule by hand if it should recur.',
                j.id, j.task_type, j.minutes, v_why;
            v_kept := v_kept + 1;
            continue;
        end if;

        v_payload := v_defaults || j.payload;
        v_name := case when j.task_type = any (v_taken) then format('%s:%s', j.task_type, left(j.id::text, 8))
                       else j.task_type end;
        v_taken := v_taken || j.task_type;
        execute $s$
            insert into public.job_queue_schedules (name, task_type, payload, cron, enabled, next_run_at)
            values ($1, $2, $3, $4, true, public.job_queue_cron_next($4, now()))
            on conflict (name) do update
               set task_type = excluded.task_type, payload = excluded.payload, cron = excluded.cron,
                   enabled = true, next_run_at = excluded.next_run_at, updated_at = now()
        $s$ using v_name, j.task_type, v_payload, v_cron;
        execute $u$
            update public.job_queue
               set status = 'cancelled', completed_at = now(), updated_at = now(),
                   lease_token = null, lease_expires_at = null,
                   last_error = format('adopted: replaced by the schedule %s (%s, UTC)', $2, $3)
             where id = $1
        $u$ using j.id, v_name, v_cron;
        raise notice 'adopt recurring job % (%, every % minutes) is now the schedule % (%, payload %)',
            j.id, j.task_type, j.minutes, v_name, v_cron, v_payload;
        v_converted := v_converted + 1;
    end loop;
    raise notice 'adopt job_queue: % recurring job(s) became schedules, % kept as plain jobs, % expired ones cancelled',
        v_converted, v_kept, v_expired;
end
$recurring$;

do $runs$
declare
    v_n bigint;
begin
    if to_regclass('public.job_worker_runs') is null then
        return;
    end if;
    -- Each original run once: a run already copied has the same start and source.
    insert into public.job_queue_invocations (
        trigger_source, status, claimed, processed, succeeded, failed, error, started_at, finished_at, duration_ms)
    select w.source,
           case w.status when 'ok' then 'completed' when 'paused' then 'paused' when 'error' then 'failed'
                else case when w.completed_at is null then 'failed' else 'completed' end end,
           w.processed, w.processed, coalesce(w.succeeded, 0), coalesce(w.failed, 0),
           case when w.status = 'error' then coalesce(w.error_message, w.message, 'error')
                when w.status is null and w.completed_at is null
                    then 'interrupted: the original app''s worker never recorded how this run ended'
                else w.error_message end,
           w.started_at, w.completed_at,
           (extract(epoch from w.completed_at - w.started_at) * 1000)::integer
      from public.job_worker_runs w
     where not exists (select from public.job_queue_invocations r
                        where r.started_at = w.started_at and r.trigger_source = w.source)
     order by w.started_at, w.id;
    get diagnostics v_n = row_count;
    raise notice 'adopt job_worker_runs: % run(s) copied into job_queue_invocations (job_worker_runs left as it is)', v_n;
end
$runs$;

-- 3. Solves stored by the original app keep the vendor's item in raw_payload;
--    the bundle's own columns for the same facts (added by the Game Platform
--    migration, empty on adopted rows) are filled from it: a solve's NIST NICE
--    work roles and retired flag, and a flash-CTF solve's event (the event's
--    item lists its solves).
do $solves$
declare
    v_roles bigint;
    v_events bigint;
begin
    if to_regclass('public.game_platform_challenge_solves') is null or not exists (
        select from pg_attribute
         where attrelid = 'public.game_platform_challenge_solves'::regclass and attname = 'raw_payload'
           and not attisdropped) then
        return;
    end if;
    update public.game_platform_challenge_solves s
       set nist_nice_work_roles = array(select jsonb_array_elements_text(s.raw_payload -> 'nist_nice_work_roles')),
           challenge_retired = case when jsonb_typeof(s.raw_payload -> 'challenge_retired') = 'boolean'
                                    then (s.raw_payload ->> 'challenge_retired')::boolean
                                    else s.challenge_retired end
     where s.nist_nice_work_roles = '{}'
       and jsonb_typeof(s.raw_payload -> 'nist_nice_work_roles') = 'array'
       and jsonb_array_length(s.raw_payload -> 'nist_nice_work_roles') > 0
       and not exists (select from jsonb_array_elements(s.raw_payload -> 'nist_nice_work_roles') r
                        where jsonb_typeof(r) <> 'string');
    get diagnostics v_roles = row_count;
    update public.game_platform_challenge_solves s
       set challenge_retired = (s.raw_payload ->> 'challenge_retired')::boolean
     where s.challenge_retired is null and jsonb_typeof(s.raw_payload -> 'challenge_retired') = 'boolean';
    if to_regclass('public.game_platform_flash_ctf_events') is not null and exists (
        select from pg_attribute
         where attrelid = 'public.game_platform_flash_ctf_events'::regclass and attname = 'raw_payload'
           and not attisdropped) then
        update public.game_platform_challenge_solves s
           set flash_ctf_event_id = e.event_id
          from public.game_platform_flash_ctf_events e
          cross join lateral jsonb_array_elements(
              case when jsonb_typeof(e.raw_payload -> 'challenge_solves') = 'array'
                   then e.raw_payload -> 'challenge_solves' else '[]'::jsonb end) item
         where s.source = 'flash_ctf' and s.flash_ctf_event_id is null
           and s.syned_user_id = e.syned_user_id
           and jsonb_typeof(item -> 'challenge_solve_id') = 'number'
           and (item ->> 'challenge_solve_id') ~ '^[0-9]+$'
           and s.challenge_solve_id = (item ->> 'challenge_solve_id')::bigint;
        get diagnostics v_events = row_count;
    end if;
    raise notice 'adopt game_platform_challenge_solves: work roles filled from raw_payload for % solve(s), the event for % flash-CTF solve(s)',
        v_roles, coalesce(v_events, 0);
end
$solves$;
