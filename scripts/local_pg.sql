-- name: database_exists --
select 1 from pg_database where datname = %(name)s

-- name: create_database --
-- The name is composed in as a psycopg.sql.Identifier (DDL takes no parameters).
create database {name}

-- name: drop_database --
-- The name is composed in as a psycopg.sql.Identifier. Forced: pg_cron's launcher may be connected to it.
drop database if exists {name} with (force)

-- name: cron_database_name --
-- The database pg_cron runs its jobs in, or null when pg_cron is not preloaded.
select current_setting('cron.database_name', true)
