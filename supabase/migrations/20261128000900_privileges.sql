-- Privileges, in one place, for every function and table the migrations create.
--
-- Supabase exposes `public` through its REST API, and its default privileges
-- grant every new table, sequence and function there to anon and
-- authenticated. The bundle's objects are for the service role (the bundle's
-- own connection) only:
--
-- * every function named job_queue_* or game_platform_*: execute revoked from
--   public, anon and authenticated, granted to service_role;
-- * the queue's tables (job_queue and job_queue_*), whoever created them: row
--   level security on, every privilege revoked from public, anon and
--   authenticated, select/insert/update/delete granted to service_role;
-- * the domain tables (profiles, competitors, teams, team_members,
--   game_platform_*) as the bundle creates them, i.e. with row level security
--   on and no policy: the same privileges. (Through such a table anon and
--   authenticated could read nothing anyway.) An app's own table with
--   policies, or with RLS off, keeps its security as it is: its dashboard may
--   read it as `authenticated`;
-- * the identity/serial sequences of the tables above follow their tables.
--
-- Each table is created with row level security on, in the migration that
-- creates it (for the domain tables only where that migration created them).
--
-- Migrations are append-only (docs/migrations.md): a later migration that adds
-- a function or a table ends with `select public.job_queue_apply_privileges();`.
-- tests/test_queue_sql.py checks that no client role can execute or read
-- anything of the bundle's.

create or replace function public.job_queue_apply_privileges()
returns void
language plpgsql
set search_path = public, pg_temp
as $$
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
$$;

comment on function public.job_queue_apply_privileges() is
    'Close every job_queue_*/game_platform_* function and the bundle''s tables (and their sequences) to all but service_role. Safe to run again; every migration that adds one ends with it.';

select public.job_queue_apply_privileges();
