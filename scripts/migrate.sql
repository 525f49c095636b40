-- name: lock --
-- Concurrent migrators take turns: a transaction-level advisory lock on a fixed key.
select pg_advisory_xact_lock(%(key)s)

-- name: supabase_compatibility --
-- What Supabase provides and the migrations expect, created where missing: the
-- roles anon, authenticated and service_role, the schema auth, and the Supabase
-- CLI's migration record. Sent as one script, without parameters.
do $compat$
declare
    r text;
begin
    foreach r in array array['anon', 'authenticated', 'service_role'] loop
        if not exists (select from pg_roles where rolname = r) then
            -- Roles are cluster-wide: two databases migrated at once may race to
            -- create one, so a duplicate here is expected and harmless.
            begin
                execute format('create role %I nologin noinherit', r);
            exception when duplicate_object or unique_violation then null;
            end;
        end if;
    end loop;
end
$compat$;
create schema if not exists auth;
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
    version text primary key,
    statements text[],
    name text
);

-- name: applied_versions --
select version from supabase_migrations.schema_migrations

-- name: recorded_migrations --
select version, name from supabase_migrations.schema_migrations

-- name: record_migration --
insert into supabase_migrations.schema_migrations (version, name) values (%(version)s, %(name)s)
