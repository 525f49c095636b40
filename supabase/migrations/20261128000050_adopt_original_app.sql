-- Adopting the original app's database (docs/adoption.md).
--
-- Runs before every other migration. Where it finds the original app's tables
-- (the seed-era or the current shape, as reference/origin-schema.md describes them),
-- it converts them in place into the shape the later migrations expect, so their
-- `create table if not exists` / `add column if not exists` complete them and
-- every row is kept. On a fresh database, or one already in our shape, it
-- changes nothing.
--
-- Safe by construction: the file is one transaction (scripts/migrate.py and
-- `supabase db push` run each migration in its own), every table's shape is
-- checked before anything is changed, and a shape it does not know (a column of
-- another type, a value it cannot map) raises an exception naming it, so the
-- whole conversion rolls back. What it converts is reported with NOTICEs.
--
-- The rule for the app's tables: the app's columns are kept as they are. Where
-- the bundle names the same fact differently, the bundle's column is added and
-- filled from the app's (`last_odl_synced_at` → `last_synced_at`, the sync runs'
-- `completed_at` → `finished_at`, …). The platform user id, a key that the app
-- itself renamed (`syned_user_id` → `synced_user_id`, 2025-10-08), takes the
-- bundle's (and the vendor's) name back, and the app's name stays as a read-only
-- generated column, so the app's dashboard (`get_dashboard_category_totals`,
-- its REST reads) keeps working.
--
-- Recurring jobs and the worker-run history are carried over by
-- 20261201000900_adopt_recurring_jobs.sql, once the bundle's tables exist.

-- ---------------------------------------------------------------------------
-- Helpers (session-local, dropped at the end)
-- ---------------------------------------------------------------------------

-- The column's type as format_type() spells it, or NULL when it does not exist.
create function pg_temp.adopt_column_type(p_table text, p_column text)
returns text
language sql
stable
as $$
    select format_type(a.atttypid, a.atttypmod)
      from pg_attribute a
     where a.attrelid = to_regclass(format('public.%I', p_table))
       and a.attname = p_column and a.attnum > 0 and not a.attisdropped
$$;

create function pg_temp.adopt_is_generated(p_table text, p_column text)
returns boolean
language sql
stable
as $$
    select coalesce((
        select a.attgenerated <> ''
          from pg_attribute a
         where a.attrelid = to_regclass(format('public.%I', p_table))
           and a.attname = p_column and a.attnum > 0 and not a.attisdropped), false)
$$;

-- Refuses unless each listed column, where it exists, has the listed type;
-- `p_required` columns must exist. Pairs are 'column:type'.
create function pg_temp.adopt_expect(p_table text, p_columns text[], p_required text[] default '{}')
returns void
language plpgsql
as $$
declare
    c text;
    v_name text;
    v_want text;
    v_have text;
begin
    if to_regclass(format('public.%I', p_table)) is null then
        return;
    end if;
    foreach c in array p_columns loop
        v_name := split_part(c, ':', 1);
        v_want := split_part(c, ':', 2);
        v_have := pg_temp.adopt_column_type(p_table, v_name);
        if v_have is null and v_name = any(p_required) then
            raise exception 'adoption refused, nothing changed: public.% has no column % (a shape this migration does not know)',
                p_table, v_name
                using hint = 'See docs/adoption.md: the shapes it converts are the original app''s seed-era and current ones.';
        end if;
        if v_have is not null and v_have <> v_want then
            raise exception 'adoption refused, nothing changed: public.%.% is % where % was expected',
                p_table, v_name, v_have, v_want
                using hint = 'See docs/adoption.md: the shapes it converts are the original app''s seed-era and current ones.';
        end if;
    end loop;
end
$$;

-- Refuses when a column holds values outside the given set (NULL allowed or not).
create function pg_temp.adopt_expect_values(p_table text, p_column text, p_allowed text[], p_null_ok boolean)
returns void
language plpgsql
as $$
declare
    v_bad text;
begin
    execute format(
        'select string_agg(format(''%%L (%%s rows)'', v, n), '', '' order by v)
           from (select %1$I::text as v, count(*) as n from public.%2$I
                  where %1$I::text <> all ($1) or (%1$I is null and not $2)
                  group by 1) bad',
        p_column, p_table)
      into v_bad using p_allowed, p_null_ok;
    if v_bad is not null then
        raise exception 'adoption refused, nothing changed: public.%.% holds values this migration cannot map: %',
            p_table, p_column, v_bad
            using hint = format('Known values: %s. Correct or remove those rows, then migrate again.',
                                array_to_string(p_allowed, ', '));
    end if;
end
$$;

-- Runs an UPDATE with the table's enabled user triggers (the app's
-- `updated_at` stampers) switched off, so converted rows keep their values;
-- returns the number of rows it changed.
create function pg_temp.adopt_update(p_table text, p_sql text)
returns bigint
language plpgsql
as $$
declare
    v_triggers text[];
    t text;
    v_rows bigint;
begin
    select coalesce(array_agg(tgname), '{}') into v_triggers
      from pg_trigger
     where tgrelid = format('public.%I', p_table)::regclass and not tgisinternal and tgenabled <> 'D';
    foreach t in array v_triggers loop
        execute format('alter table public.%I disable trigger %I', p_table, t);
    end loop;
    execute p_sql;
    get diagnostics v_rows = row_count;
    foreach t in array v_triggers loop
        execute format('alter table public.%I enable trigger %I', p_table, t);
    end loop;
    return v_rows;
end
$$;

-- The check constraints of a table whose expression mentions a column.
create function pg_temp.adopt_checks_on(p_table text, p_column text)
returns setof name
language sql
stable
as $$
    select c.conname
      from pg_constraint c
      join pg_attribute a on a.attrelid = c.conrelid and a.attnum = any(c.conkey)
     where c.conrelid = to_regclass(format('public.%I', p_table))
       and c.contype = 'c' and a.attname = p_column
$$;

-- The unique constraint or index on exactly these columns, if any.
create function pg_temp.adopt_unique_on(p_table text, p_columns text[])
returns name
language sql
stable
as $$
    select ic.relname
      from pg_index i
      join pg_class ic on ic.oid = i.indexrelid
     where i.indrelid = to_regclass(format('public.%I', p_table))
       and i.indisunique and i.indpred is null
       and (select array_agg(a.attname::text order by k.ord)
              from unnest(i.indkey) with ordinality as k(attnum, ord)
              join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum) = p_columns
     order by i.indisprimary desc, ic.relname
     limit 1
$$;

-- The platform user id column (and the solves' team id): the app's `synced_*`
-- name becomes ours (`syned_*`) and stays as a generated read-only alias.
create function pg_temp.adopt_user_id_column(p_table text, p_ours text, p_theirs text)
returns void
language plpgsql
as $$
declare
    v_ours text := pg_temp.adopt_column_type(p_table, p_ours);
    v_theirs text := pg_temp.adopt_column_type(p_table, p_theirs);
begin
    if v_theirs is null or pg_temp.adopt_is_generated(p_table, p_theirs) then
        return;  -- seed era, ours, or already adopted
    end if;
    if v_ours is not null then
        raise exception 'adoption refused, nothing changed: public.% has both % and % as plain columns',
            p_table, p_ours, p_theirs
            using hint = 'A shape this migration does not know; see docs/adoption.md.';
    end if;
    execute format('alter table public.%I rename column %I to %I', p_table, p_theirs, p_ours);
    execute format('alter table public.%I add column %I text generated always as (%I) stored',
                   p_table, p_theirs, p_ours);
    execute format('comment on column public.%I.%I is %L', p_table, p_theirs,
                   format('Read-only alias of %s, kept for the original app''s readers (adopted %s).',
                          p_ours, now()::date));
    raise notice 'adopt %: column % renamed to % (the vendor''s name, which the bundle uses); % kept as a read-only alias',
        p_table, p_theirs, p_ours, p_theirs;
end
$$;

-- ---------------------------------------------------------------------------
-- The conversion
-- ---------------------------------------------------------------------------

do $adopt$
declare
    v_n bigint;
    v_name name;
    v_function text;
    v_origin_queue boolean;
    v_origin_runs boolean;
    v_origin_stats boolean;
    v_origin_db boolean;
begin
    -- -- 1. Inspect: refuse a shape we do not know before changing anything ---------

    perform pg_temp.adopt_expect('job_queue', array[
        'id:uuid', 'task_type:text', 'payload:jsonb', 'status:text', 'run_at:timestamp with time zone',
        'attempts:integer', 'max_attempts:integer', 'last_error:text', 'output:jsonb',
        'created_at:timestamp with time zone', 'updated_at:timestamp with time zone',
        'completed_at:timestamp with time zone', 'dedupe_key:text', 'lease_token:uuid',
        'locked_at:timestamp with time zone', 'lease_expires_at:timestamp with time zone',
        'is_recurring:boolean', 'recurrence_interval_minutes:integer', 'expires_at:timestamp with time zone',
        'last_run_at:timestamp with time zone'],
        array['id', 'task_type', 'payload', 'status', 'run_at', 'attempts', 'max_attempts', 'updated_at']);
    v_origin_queue := to_regclass('public.job_queue') is not null
                      and pg_temp.adopt_column_type('job_queue', 'lease_token') is null;
    if to_regclass('public.job_queue') is not null then
        perform pg_temp.adopt_expect_values('job_queue', 'status',
            case when v_origin_queue then array['pending', 'running', 'succeeded', 'failed', 'cancelled']
                 else array['pending', 'processing', 'succeeded', 'failed', 'cancelled'] end,
            false);
        select count(*) into v_n from public.job_queue where length(task_type) not between 1 and 200;
        if v_n > 0 then
            raise exception 'adoption refused, nothing changed: public.job_queue has % rows whose task_type is empty or longer than 200 characters', v_n;
        end if;
    end if;

    perform pg_temp.adopt_expect('job_queue_settings', array[
        'processing_enabled:boolean', 'paused_reason:text', 'updated_at:timestamp with time zone'],
        array['id', 'processing_enabled']);
    if pg_temp.adopt_column_type('job_queue_settings', 'id') not in ('integer', 'boolean') then
        raise exception 'adoption refused, nothing changed: public.job_queue_settings.id is %, where integer (the original app) or boolean (this bundle) was expected',
            pg_temp.adopt_column_type('job_queue_settings', 'id');
    end if;
    if pg_temp.adopt_column_type('job_queue_settings', 'id') = 'integer' then
        select count(*) into v_n from public.job_queue_settings where id <> 1;
        if v_n > 0 then
            raise exception 'adoption refused, nothing changed: public.job_queue_settings has % rows with an id other than 1 (the original app keeps one row, id 1)', v_n;
        end if;
    end if;

    perform pg_temp.adopt_expect('competitors', array[
        'id:uuid', 'coach_id:uuid', 'first_name:text', 'last_name:text', 'email:text', 'game_platform_id:text',
        'game_platform_synced_at:timestamp with time zone', 'game_platform_sync_error:text']);
    perform pg_temp.adopt_expect('teams', array[
        'id:uuid', 'coach_id:uuid', 'name:text', 'division:text', 'affiliation:text', 'game_platform_id:text',
        'game_platform_synced_at:timestamp with time zone', 'game_platform_sync_error:text']);
    perform pg_temp.adopt_expect('team_members', array[
        'id:uuid', 'team_id:uuid', 'competitor_id:uuid',
        'game_platform_synced_at:timestamp with time zone', 'game_platform_sync_error:text']);
    perform pg_temp.adopt_expect('profiles', array['id:uuid', 'game_platform_user_id:text', 'email:text']);

    perform pg_temp.adopt_expect('game_platform_stats', array[
        'id:uuid', 'competitor_id:uuid', 'challenges_completed:integer', 'monthly_ctf_challenges:integer',
        'total_score:integer', 'last_activity:timestamp with time zone', 'synced_at:timestamp with time zone',
        'updated_at:timestamp with time zone', 'created_at:timestamp with time zone'],
        array['competitor_id']);
    perform pg_temp.adopt_expect('game_platform_sync_state', array[
        'syned_user_id:text', 'synced_user_id:text', 'last_odl_synced_at:timestamp with time zone',
        'last_synced_at:timestamp with time zone', 'last_attempt_at:timestamp with time zone',
        'last_remote_accessed_at:timestamp with time zone',
        'last_result:text', 'error_message:text', 'needs_totals_refresh:boolean',
        'needs_totals_refresh_since:timestamp with time zone',
        'totals_refresh_requested_at:timestamp with time zone', 'updated_at:timestamp with time zone']);
    perform pg_temp.adopt_expect('game_platform_challenge_solves', array[
        'id:bigint', 'syned_user_id:text', 'synced_user_id:text', 'syned_team_id:text', 'synced_team_id:text',
        'challenge_solve_id:bigint', 'challenge_id:bigint', 'challenge_title:text', 'challenge_category:text',
        'challenge_points:integer', 'solved_at:timestamp with time zone', 'source:text', 'raw_payload:jsonb']);
    perform pg_temp.adopt_expect('game_platform_flash_ctf_events', array[
        'id:bigint', 'syned_user_id:text', 'synced_user_id:text', 'event_id:text', 'flash_ctf_name:text',
        'challenges_solved:integer', 'points_earned:integer', 'rank:integer',
        'started_at:timestamp with time zone', 'ended_at:timestamp with time zone', 'raw_payload:jsonb',
        'max_points_possible:integer']);
    if pg_temp.adopt_column_type('game_platform_sync_runs', 'id') not in ('uuid', 'bigint') then
        raise exception 'adoption refused, nothing changed: public.game_platform_sync_runs.id is %, where uuid (the original app) or bigint (this bundle) was expected',
            pg_temp.adopt_column_type('game_platform_sync_runs', 'id');
    end if;
    v_origin_runs := pg_temp.adopt_column_type('game_platform_sync_runs', 'id') = 'uuid';
    if v_origin_runs then
        perform pg_temp.adopt_expect('game_platform_sync_runs', array[
            'started_at:timestamp with time zone', 'completed_at:timestamp with time zone', 'status:text',
            'competitors_synced:integer', 'competitors_failed:integer', 'error_message:text', 'sync_type:text'],
            array['started_at', 'status']);
        perform pg_temp.adopt_expect_values('game_platform_sync_runs', 'status',
            array['running', 'completed', 'failed'], false);
        perform pg_temp.adopt_expect_values('game_platform_sync_runs', 'sync_type',
            array['incremental', 'full'], true);
    end if;
    -- The current app's worker-run history, copied by 20261201000900_adopt_recurring_jobs.sql.
    if to_regclass('public.job_worker_runs') is not null then
        perform pg_temp.adopt_expect('job_worker_runs', array[
            'started_at:timestamp with time zone', 'completed_at:timestamp with time zone', 'source:text',
            'status:text', 'processed:integer', 'succeeded:integer', 'failed:integer', 'message:text',
            'error_message:text'],
            array['started_at', 'completed_at', 'source', 'status', 'processed', 'succeeded', 'failed',
                  'message', 'error_message']);
        perform pg_temp.adopt_expect_values('job_worker_runs', 'status', array['ok', 'paused', 'error'], true);
    end if;
    if to_regclass('public.game_platform_sync_state') is not null then
        perform pg_temp.adopt_expect_values('game_platform_sync_state', 'last_result',
            array['updated', 'unchanged', 'remote_missing', 'failed', 'not_approved', 'success', 'failure'], true);
    end if;

    v_origin_stats := to_regclass('public.game_platform_stats') is not null
        and pg_temp.adopt_unique_on('game_platform_stats', array['competitor_id']) is null;
    v_origin_db := v_origin_queue or v_origin_runs or v_origin_stats
        or pg_temp.adopt_column_type('job_queue_settings', 'id') = 'integer'
        or pg_temp.adopt_column_type('game_platform_sync_state', 'last_odl_synced_at') is not null;
    if not v_origin_db then
        raise notice 'adopt: no table in the original app''s shapes; nothing to convert';
    end if;

    -- -- 2. The job queue -----------------------------------------------------------

    if v_origin_queue then
        alter table public.job_queue
            add column if not exists dedupe_key text,
            add column if not exists lease_token uuid,
            add column if not exists locked_at timestamptz,
            add column if not exists lease_expires_at timestamptz;
        for v_name in select pg_temp.adopt_checks_on('job_queue', 'status') loop
            execute format('alter table public.job_queue drop constraint %I', v_name);
        end loop;
        -- The original's single attempts check becomes ours (the same rules, two checks).
        for v_name in select pg_temp.adopt_checks_on('job_queue', 'attempts') loop
            execute format('alter table public.job_queue drop constraint %I', v_name);
        end loop;
        alter table public.job_queue
            add constraint job_queue_status_check
                check (status in ('pending', 'processing', 'succeeded', 'failed', 'cancelled')) not valid,
            add constraint job_queue_attempts_check check (attempts >= 0),
            add constraint job_queue_max_attempts_check check (max_attempts >= 1);
        if not exists (select from pg_temp.adopt_checks_on('job_queue', 'task_type')) then
            alter table public.job_queue
                add constraint job_queue_task_type_check check (length(task_type) between 1 and 200);
        end if;

        -- A `running` job's worker is gone (nothing in the original app ever looks
        -- at it again): it becomes `processing` under a lease that expired when it
        -- was claimed, so the next claim takes it over as a new attempt (or fails
        -- it for good when its attempts are spent).
        v_n := pg_temp.adopt_update('job_queue',
            'update public.job_queue
                set status = ''processing'', locked_at = updated_at,
                    lease_expires_at = least(updated_at, now())
              where status = ''running''');
        raise notice 'adopt job_queue: % running job(s) now processing with an expired lease: the next claim recovers them', v_n;
        alter table public.job_queue validate constraint job_queue_status_check;

        -- The current app's runner leaves completed_at NULL on finished jobs; the
        -- bundle's retention and health read it, so it takes the last update time.
        v_n := pg_temp.adopt_update('job_queue',
            'update public.job_queue set completed_at = updated_at
              where status in (''succeeded'', ''failed'', ''cancelled'') and completed_at is null');
        raise notice 'adopt job_queue: % finished job(s) without completed_at given their last update time', v_n;
        select count(*) into v_n from public.job_queue;
        raise notice 'adopt job_queue: % job(s) kept', v_n;

        -- The original's queue functions share names with ours but not argument
        -- lists: left in place they would make calls ambiguous (a four-argument
        -- job_queue_enqueue matches both) or write `running`. Ours replace them;
        -- the app's callers by named arguments (p_task_type, p_payload, p_run_at,
        -- p_max_attempts) keep working with ours.
        for v_function in
            select p.oid::regprocedure::text
              from pg_proc p
             where p.pronamespace = 'public'::regnamespace
               and p.oid::regprocedure::text in (
                   'job_queue_enqueue(text,jsonb,timestamp with time zone,integer)',
                   'job_queue_claim(integer)',
                   'job_queue_mark_succeeded(uuid,jsonb)',
                   'job_queue_mark_failed(uuid,text,interval)',
                   'job_queue_mark_failed(uuid,text,integer)',
                   'job_queue_cleanup(interval)')
        loop
            execute format('drop function public.%s', v_function);
            raise notice 'adopt job_queue: the original app''s function % dropped (replaced by the bundle''s)', v_function;
        end loop;
    end if;

    -- -- 3. The pause switch: integer id 1 → the bundle's boolean single-row key --------

    if pg_temp.adopt_column_type('job_queue_settings', 'id') = 'integer' then
        for v_name in select pg_temp.adopt_checks_on('job_queue_settings', 'id') loop
            execute format('alter table public.job_queue_settings drop constraint %I', v_name);
        end loop;
        alter table public.job_queue_settings alter column id drop default;
        -- A type change rewrites the table but fires no trigger: updated_at is kept.
        alter table public.job_queue_settings alter column id type boolean using (id = 1);
        alter table public.job_queue_settings alter column id set default true;
        alter table public.job_queue_settings add constraint job_queue_settings_id_check check (id);
        select count(*) into v_n from public.job_queue_settings where not processing_enabled;
        raise notice 'adopt job_queue_settings: id is now the bundle''s boolean key; the pause switch kept (% paused)',
            case when v_n > 0 then 'processing is' else 'processing is not' end;
    end if;

    -- -- 4. Game Platform data ----------------------------------------------------------

    perform pg_temp.adopt_user_id_column('game_platform_sync_state', 'syned_user_id', 'synced_user_id');
    perform pg_temp.adopt_user_id_column('game_platform_challenge_solves', 'syned_user_id', 'synced_user_id');
    perform pg_temp.adopt_user_id_column('game_platform_challenge_solves', 'syned_team_id', 'synced_team_id');
    perform pg_temp.adopt_user_id_column('game_platform_flash_ctf_events', 'syned_user_id', 'synced_user_id');

    -- Sync state: the bundle's per-user incremental time, flag bookkeeping and results.
    if pg_temp.adopt_column_type('game_platform_sync_state', 'last_odl_synced_at') is not null
       and pg_temp.adopt_column_type('game_platform_sync_state', 'last_synced_at') is null then
        alter table public.game_platform_sync_state add column last_synced_at timestamptz;
        v_n := pg_temp.adopt_update('game_platform_sync_state',
            'update public.game_platform_sync_state set last_synced_at = last_odl_synced_at
              where last_odl_synced_at is not null');
        raise notice 'adopt game_platform_sync_state: last_synced_at filled from last_odl_synced_at for % user(s)', v_n;
    end if;
    if pg_temp.adopt_column_type('game_platform_sync_state', 'needs_totals_refresh_since') is null
       and to_regclass('public.game_platform_sync_state') is not null then
        alter table public.game_platform_sync_state
            add column needs_totals_refresh_since timestamptz,
            add column totals_refresh_requested_at timestamptz;
        v_n := pg_temp.adopt_update('game_platform_sync_state',
            'update public.game_platform_sync_state set needs_totals_refresh = false
              where needs_totals_refresh is null');
        raise notice 'adopt game_platform_sync_state: % NULL needs_totals_refresh read as false', v_n;
        -- The original records no "since when" for a flag: its last update is the best we know.
        v_n := pg_temp.adopt_update('game_platform_sync_state',
            'update public.game_platform_sync_state
                set needs_totals_refresh_since = updated_at, totals_refresh_requested_at = updated_at
              where needs_totals_refresh');
        raise notice 'adopt game_platform_sync_state: % flagged user(s) dated by their last update for the totals sweep', v_n;
        alter table public.game_platform_sync_state
            alter column needs_totals_refresh set default false,
            alter column needs_totals_refresh set not null;
    end if;
    -- last_result: the original's two values stay readable on old rows; ours are added.
    if exists (
        select from pg_constraint c
         where c.conrelid = to_regclass('public.game_platform_sync_state')
           and c.conname in (select pg_temp.adopt_checks_on('game_platform_sync_state', 'last_result'))
           and pg_get_constraintdef(c.oid) not like '%''updated''%') then
        for v_name in select pg_temp.adopt_checks_on('game_platform_sync_state', 'last_result') loop
            execute format('alter table public.game_platform_sync_state drop constraint %I', v_name);
        end loop;
        alter table public.game_platform_sync_state
            add constraint game_platform_sync_state_last_result_check
            check (last_result in ('updated', 'unchanged', 'remote_missing', 'failed', 'not_approved',
                                   'success', 'failure'));
        raise notice 'adopt game_platform_sync_state: last_result check widened to the bundle''s values (the original''s success/failure stay valid on old rows)';
    end if;

    -- Solves and flash-CTF events: the original's unique keys take our names, so
    -- the later migrations find them instead of building a second index.
    if to_regclass('public.game_platform_challenge_solves') is not null then
        v_name := pg_temp.adopt_unique_on('game_platform_challenge_solves', array['syned_user_id', 'challenge_solve_id']);
        if v_name is not null and v_name <> 'game_platform_challenge_solves_syned_user_id_challenge_solve_id' then
            execute format('alter index public.%I rename to game_platform_challenge_solves_syned_user_id_challenge_solve_id', v_name);
        end if;
        if v_origin_db then
            select count(*) into v_n from public.game_platform_challenge_solves;
            raise notice 'adopt game_platform_challenge_solves: % solve(s) kept', v_n;
        end if;
    end if;
    if to_regclass('public.game_platform_flash_ctf_events') is not null then
        v_name := pg_temp.adopt_unique_on('game_platform_flash_ctf_events', array['syned_user_id', 'event_id']);
        if v_name is not null and v_name <> 'game_platform_flash_ctf_events_syned_user_id_event_id_key' then
            execute format('alter index public.%I rename to game_platform_flash_ctf_events_syned_user_id_event_id_key', v_name);
        end if;
        if exists (select from information_schema.columns
                    where table_schema = 'public' and table_name = 'game_platform_flash_ctf_events'
                      and column_name in ('challenges_solved', 'points_earned') and is_nullable = 'YES') then
            v_n := pg_temp.adopt_update('game_platform_flash_ctf_events',
                'update public.game_platform_flash_ctf_events
                    set challenges_solved = coalesce(challenges_solved, 0), points_earned = coalesce(points_earned, 0)
                  where challenges_solved is null or points_earned is null');
            raise notice 'adopt game_platform_flash_ctf_events: % event(s) with NULL counts read as 0', v_n;
            alter table public.game_platform_flash_ctf_events
                alter column challenges_solved set not null,
                alter column points_earned set not null;
        end if;
        if v_origin_db then
            select count(*) into v_n from public.game_platform_flash_ctf_events;
            raise notice 'adopt game_platform_flash_ctf_events: % event(s) kept', v_n;
        end if;
    end if;

    -- Stats: one row per competitor. The original keys rows by `id` and keeps
    -- one per competitor only by looking first, so duplicates exist. Per
    -- competitor the most recently synced row is kept (then the most recently
    -- updated, then created, then the greatest id), with the latest
    -- last_activity and the earliest created_at of the group; the others are
    -- moved, as they were, to game_platform_stats_merged_duplicates.
    if v_origin_stats then
        if pg_temp.adopt_column_type('game_platform_stats', 'id') is null then
            raise exception 'adoption refused, nothing changed: public.game_platform_stats has neither an id column nor a unique competitor_id';
        end if;
        create table if not exists public.game_platform_stats_merged_duplicates
            (like public.game_platform_stats including defaults);
        alter table public.game_platform_stats_merged_duplicates
            add column if not exists merged_into uuid,
            add column if not exists merged_at timestamptz not null default now();
        comment on table public.game_platform_stats_merged_duplicates is
            'Duplicate game_platform_stats rows merged when the original app''s database was adopted (docs/adoption.md).';
        create temp table _stats_ranked on commit drop as
        select s.id, s.competitor_id,
               row_number() over (partition by s.competitor_id
                                  order by s.synced_at desc nulls last, s.updated_at desc nulls last,
                                           s.created_at desc nulls last, s.id desc) as rank,
               max(s.last_activity) over (partition by s.competitor_id) as group_last_activity,
               min(s.created_at) over (partition by s.competitor_id) as group_created_at,
               count(*) over (partition by s.competitor_id) as group_size
          from public.game_platform_stats s;
        insert into public.game_platform_stats_merged_duplicates
        select s.*, w.id
          from public.game_platform_stats s
          join _stats_ranked r on r.id = s.id and r.rank > 1
          join _stats_ranked w on w.competitor_id = r.competitor_id and w.rank = 1;
        get diagnostics v_n = row_count;
        delete from public.game_platform_stats s using _stats_ranked r where r.id = s.id and r.rank > 1;
        perform pg_temp.adopt_update('game_platform_stats',
            'update public.game_platform_stats s
                set last_activity = r.group_last_activity, created_at = r.group_created_at
               from _stats_ranked r
              where r.id = s.id and r.rank = 1 and r.group_size > 1');
        raise notice 'adopt game_platform_stats: % duplicate row(s) merged (kept in game_platform_stats_merged_duplicates)', v_n;
        alter table public.game_platform_stats_merged_duplicates enable row level security;
        revoke all on table public.game_platform_stats_merged_duplicates from public, anon, authenticated;
        grant select on table public.game_platform_stats_merged_duplicates to service_role;

        alter table public.game_platform_stats
            add constraint game_platform_stats_competitor_id_key unique (competitor_id);
        -- synced_at means "totals written by a sweep": a row created for
        -- last_activity alone must not look synced, so no default.
        alter table public.game_platform_stats alter column synced_at drop default;
        v_n := pg_temp.adopt_update('game_platform_stats',
            'update public.game_platform_stats
                set challenges_completed = coalesce(challenges_completed, 0),
                    monthly_ctf_challenges = coalesce(monthly_ctf_challenges, 0),
                    total_score = coalesce(total_score, 0),
                    updated_at = coalesce(updated_at, created_at, now())
              where challenges_completed is null or monthly_ctf_challenges is null or total_score is null
                 or updated_at is null');
        raise notice 'adopt game_platform_stats: % row(s) with NULL totals read as 0', v_n;
        alter table public.game_platform_stats
            alter column challenges_completed set not null,
            alter column monthly_ctf_challenges set not null,
            alter column total_score set not null,
            alter column updated_at set not null;
        select count(*) into v_n from public.game_platform_stats;
        raise notice 'adopt game_platform_stats: % competitor row(s), one per competitor', v_n;
    end if;

    -- Sync runs: the bundle's runs have a bigint id (continuation payloads carry
    -- it). Runs get ids in start order; the original uuid is kept in original_id.
    if v_origin_runs then
        select c.conname into v_name from pg_constraint c
         where c.conrelid = 'public.game_platform_sync_runs'::regclass and c.contype = 'p';
        if v_name is not null then
            execute format('alter table public.game_platform_sync_runs drop constraint %I', v_name);
        end if;
        alter table public.game_platform_sync_runs rename column id to original_id;
        alter table public.game_platform_sync_runs alter column original_id drop default,
            alter column original_id drop not null;
        alter table public.game_platform_sync_runs
            add constraint game_platform_sync_runs_original_id_key unique (original_id);
        comment on column public.game_platform_sync_runs.original_id is
            'The original app''s id of a run adopted from it (docs/adoption.md); NULL for the bundle''s runs.';
        alter table public.game_platform_sync_runs
            add column id bigint,
            add column full_sync boolean not null default false,
            add column counts jsonb not null default '{}'::jsonb,
            add column error text,
            add column finished_at timestamptz;
        update public.game_platform_sync_runs r
           set id = n.id,
               full_sync = coalesce(r.sync_type = 'full', false),
               counts = jsonb_build_object('competitors', jsonb_build_object(
                   'total', coalesce(r.competitors_synced, 0) + coalesce(r.competitors_failed, 0),
                   'failed', coalesce(r.competitors_failed, 0))),
               error = r.error_message,
               finished_at = r.completed_at
          from (select original_id, row_number() over (order by started_at, original_id) as id
                  from public.game_platform_sync_runs) n
         where n.original_id = r.original_id;
        get diagnostics v_n = row_count;
        alter table public.game_platform_sync_runs alter column id set not null;
        execute format('alter table public.game_platform_sync_runs alter column id add generated always as identity (start with %s)',
                       v_n + 1);
        alter table public.game_platform_sync_runs add constraint game_platform_sync_runs_pkey primary key (id);
        alter table public.game_platform_sync_runs
            add constraint game_platform_sync_runs_status_check check (status in ('running', 'completed', 'failed'));
        raise notice 'adopt game_platform_sync_runs: % run(s) kept, numbered in start order (original uuid in original_id)', v_n;
    end if;

    -- -- 5. What is left as the app has it, said once -----------------------------------

    -- The roster is the app's: checked above, completed by the later migrations.
    if v_origin_db then
        for v_name in
            select t from unnest(array['profiles', 'competitors', 'teams', 'team_members']) t
             where to_regclass(format('public.%I', t)) is not null
        loop
            execute format('select count(*) from public.%I', v_name) into v_n;
            raise notice 'adopt %: % row(s) kept as the app has them', v_name, v_n;
        end loop;
    end if;

    for v_name in
        select distinct p.tablename from pg_policies p
         where p.schemaname = 'public' and p.qual = 'true'
           and p.tablename like 'game\_platform\_%'
    loop
        raise notice 'adopt %: left as it is: its policy lets every role that has table privileges read and write it (the original app''s "allow_all_access_for_now")', v_name;
    end loop;
end
$adopt$;

drop function pg_temp.adopt_column_type(text, text);
drop function pg_temp.adopt_is_generated(text, text);
drop function pg_temp.adopt_expect(text, text[], text[]);
drop function pg_temp.adopt_expect_values(text, text, text[], boolean);
drop function pg_temp.adopt_update(text, text);
drop function pg_temp.adopt_checks_on(text, text);
drop function pg_temp.adopt_unique_on(text, text[]);
drop function pg_temp.adopt_user_id_column(text, text, text);
