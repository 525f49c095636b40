-- The app's user profiles: the admin endpoints read `profiles.role` of a session's
-- user (`'admin'` may use them), and the Game Platform handlers read the rest.
--
-- The app usually has this table already (created by its own migrations, often
-- with a foreign key to auth.users and RLS policies of its own). So the table is
-- created only where missing, the columns this bundle reads are added only where
-- missing, and nothing is dropped or tightened on a table the app owns.
-- There is deliberately no foreign key to auth.users: a plain PostgreSQL test or
-- dev database has no auth.users table.

do $profiles$
begin
    if to_regclass('public.profiles') is null then
        create table public.profiles (
            id uuid primary key,
            role text,
            is_approved boolean not null default false,
            game_platform_user_id text,
            first_name text,
            last_name text,
            email text,
            created_at timestamptz not null default now(),
            updated_at timestamptz not null default now()
        );
        comment on table public.profiles is
            'App users. The admin endpoints admit sessions whose profile has role = ''admin''.';
        -- Supabase serves public tables through its REST API. RLS without a policy
        -- keeps anon and authenticated out; the bundle's own connection bypasses
        -- it (privileges: job_queue_apply_privileges, 20261128000900_privileges.sql).
        alter table public.profiles enable row level security;
    end if;
end
$profiles$;

alter table public.profiles add column if not exists role text;
alter table public.profiles add column if not exists is_approved boolean default false;
alter table public.profiles add column if not exists game_platform_user_id text;
alter table public.profiles add column if not exists first_name text;
alter table public.profiles add column if not exists last_name text;
alter table public.profiles add column if not exists email text;
