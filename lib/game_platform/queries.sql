-- name: now --
-- The database's clock: every stored time comes from it, so cursors compare like for like.
select now() as now

-- name: has_completed_sync_run --
-- A completed sync run whose scope covers this one: for an unscoped sync run,
-- an unscoped one; for a coach's, an unscoped one or one of that coach.
select exists (
    select 1 from game_platform_sync_runs
     where status = 'completed' and (coach_id is null or coach_id = %(coach_id)s::uuid)
) as found

-- name: start_sync_run --
insert into game_platform_sync_runs (status, coach_id, job_id, started_by_job_id, full_sync, progress, started_at)
values ('running', %(coach_id)s, %(job_id)s, %(job_id)s, %(full_sync)s, %(progress)s, %(started_at)s)
returning id

-- name: resume_sync_run --
-- The fenced state changes of a sync run are SQL functions (the Game Platform
-- migration): each acts only for the job driving the sync run.
select id, status, job_id, progress, owned
  from game_platform_sync_run_resume(%(job_id)s, %(sync_run_id)s)

-- name: supersede_sync_run --
select sync_run_id, job_id, job_status from game_platform_sync_run_supersede(%(coach_id)s)

-- name: checkpoint_sync_run --
select game_platform_sync_run_checkpoint(%(sync_run_id)s, %(job_id)s, %(progress)s, %(counts)s) as done

-- name: hand_over_sync_run --
select game_platform_sync_run_hand_over(%(sync_run_id)s, %(job_id)s, %(next_job_id)s, %(progress)s, %(counts)s)
       as done

-- name: finish_sync_run --
select game_platform_sync_run_finish(%(sync_run_id)s, %(job_id)s, %(status)s, %(progress)s, %(counts)s, %(error)s)
       as done

-- name: note_sync_run_error --
select game_platform_sync_run_note_error(%(sync_run_id)s, %(job_id)s, %(error)s) as done

-- name: linked_users_page --
-- Linked platform users in scope, in platform-id order after a cursor. Two
-- competitors may share a platform user; they are synced as one.
select c.game_platform_id as syned_user_id,
       array_agg(c.id order by c.id) as competitor_ids,
       s.last_synced_at
  from competitors c
  left join game_platform_sync_state s on s.syned_user_id = c.game_platform_id
 where c.game_platform_id is not null and c.game_platform_id <> ''
   and (%(coach_id)s::uuid is null or c.coach_id = %(coach_id)s::uuid)
   and (%(after)s::text is null or c.game_platform_id > %(after)s::text)
 group by c.game_platform_id, s.last_synced_at
 order by c.game_platform_id
 limit %(limit)s

-- name: sentinel_users --
-- The users most likely to have played the latest flash CTF: those with the most
-- recent (then the most) recorded events. Their progress tells whether a new
-- event happened that the rest of the sync run must fetch.
select c.game_platform_id as syned_user_id
  from competitors c
  left join game_platform_flash_ctf_events e on e.syned_user_id = c.game_platform_id
 where c.game_platform_id is not null and c.game_platform_id <> ''
   and (%(coach_id)s::uuid is null or c.coach_id = %(coach_id)s::uuid)
 group by c.game_platform_id
 order by max(e.started_at) desc nulls last, count(e.id) desc, c.game_platform_id
 limit %(limit)s

-- name: recorded_flash_events --
select syned_user_id, event_id, challenges_solved
  from game_platform_flash_ctf_events
 where syned_user_id = any(%(syned_user_ids)s::text[])

-- name: competitors_with_totals --
select competitor_id from game_platform_stats
 where competitor_id = any(%(competitor_ids)s::uuid[]) and synced_at is not null

-- name: upsert_solves --
-- Solves are upserted, the last seen winning: the vendor corrects titles,
-- points and categories. Every column but the key derives from the item as
-- received, so an item equal to the stored `raw_payload` (same source and event)
-- changes nothing and is not counted. Rows stored before `raw_payload` existed
-- are refreshed once. The batch must hold each key once (see the sync's rows).
with incoming as (
    select * from jsonb_to_recordset(%(rows)s::jsonb) as r(
        syned_user_id text, challenge_solve_id bigint, source text, flash_ctf_event_id text,
        challenge_id bigint, challenge_title text, challenge_category text, challenge_points integer,
        challenge_retired boolean, nist_nice_work_roles text[], timestamp_unix bigint, raw_payload jsonb)
), written as (
    insert into game_platform_challenge_solves as s (
        syned_user_id, challenge_solve_id, source, flash_ctf_event_id, challenge_id, challenge_title,
        challenge_category, challenge_points, challenge_retired, nist_nice_work_roles, solved_at, raw_payload)
    select syned_user_id, challenge_solve_id, source, flash_ctf_event_id, challenge_id, challenge_title,
           challenge_category, challenge_points, challenge_retired, coalesce(nist_nice_work_roles, '{}'),
           to_timestamp(timestamp_unix), raw_payload
      from incoming
    on conflict (syned_user_id, challenge_solve_id) do update
       set (source, flash_ctf_event_id, challenge_id, challenge_title, challenge_category, challenge_points,
            challenge_retired, nist_nice_work_roles, solved_at, raw_payload, updated_at)
         = (excluded.source, excluded.flash_ctf_event_id, excluded.challenge_id, excluded.challenge_title,
            excluded.challenge_category, excluded.challenge_points, excluded.challenge_retired,
            excluded.nist_nice_work_roles, excluded.solved_at, excluded.raw_payload, now())
     where (s.raw_payload, s.source, s.flash_ctf_event_id)
           is distinct from (excluded.raw_payload, excluded.source, excluded.flash_ctf_event_id)
    returning s.syned_user_id, (s.xmax = 0) as inserted
)
select syned_user_id, count(*) filter (where inserted)::int as new_solves,
       count(*) filter (where not inserted)::int as changed_solves
  from written group by syned_user_id

-- name: count_solve_changes --
select r.syned_user_id, count(*) filter (where s.id is null)::int as new_solves,
       count(*) filter (where s.id is not null)::int as changed_solves
  from jsonb_to_recordset(%(rows)s::jsonb) as r(
        syned_user_id text, challenge_solve_id bigint, source text, flash_ctf_event_id text, raw_payload jsonb)
  left join game_platform_challenge_solves s
    on s.syned_user_id = r.syned_user_id and s.challenge_solve_id = r.challenge_solve_id
 where s.id is null
    or (s.raw_payload, s.source, s.flash_ctf_event_id) is distinct from (r.raw_payload, r.source, r.flash_ctf_event_id)
 group by r.syned_user_id

-- name: upsert_flash_events --
-- Events likewise: every column derives from the item as received.
with incoming as (
    select * from jsonb_to_recordset(%(rows)s::jsonb) as r(
        syned_user_id text, event_id text, flash_ctf_name text, start_unix bigint, end_unix bigint,
        challenges_solved integer, points_earned integer, max_points_possible integer, rank integer,
        raw_payload jsonb)
), changed as (
    insert into game_platform_flash_ctf_events as e (
        syned_user_id, event_id, flash_ctf_name, started_at, ended_at, challenges_solved, points_earned,
        max_points_possible, rank, raw_payload)
    select syned_user_id, event_id, flash_ctf_name, to_timestamp(start_unix), to_timestamp(end_unix),
           coalesce(challenges_solved, 0), coalesce(points_earned, 0), max_points_possible, rank, raw_payload
      from incoming
    on conflict (syned_user_id, event_id) do update
       set (flash_ctf_name, started_at, ended_at, challenges_solved, points_earned, max_points_possible, rank,
            raw_payload, updated_at)
         = (excluded.flash_ctf_name, excluded.started_at, excluded.ended_at, excluded.challenges_solved,
            excluded.points_earned, excluded.max_points_possible, excluded.rank, excluded.raw_payload, now())
     where e.raw_payload is distinct from excluded.raw_payload
    returning e.syned_user_id
)
select syned_user_id, count(*)::int as changed from changed group by syned_user_id

-- name: count_changed_flash_events --
select r.syned_user_id, count(*)::int as changed
  from jsonb_to_recordset(%(rows)s::jsonb) as r(syned_user_id text, event_id text, raw_payload jsonb)
  left join game_platform_flash_ctf_events e on e.syned_user_id = r.syned_user_id and e.event_id = r.event_id
 where e.id is null or e.raw_payload is distinct from r.raw_payload
 group by r.syned_user_id

-- name: record_sync_state --
-- A flag already raised keeps its original time (the sweep serves the oldest
-- first); `totals_refresh_requested_at` moves on every new request, which is
-- what the sweep's compare-and-clear checks.
insert into game_platform_sync_state as s (
    syned_user_id, last_synced_at, last_attempt_at, last_result, error_message,
    needs_totals_refresh, needs_totals_refresh_since, totals_refresh_requested_at, last_remote_accessed_at)
select r.syned_user_id,
       case when r.synced then %(sync_run_started_at)s::timestamptz end,
       now(), r.result, r.error,
       r.flag, case when r.flag then now() end, case when r.flag then now() end,
       r.remote_accessed_at
  from jsonb_to_recordset(%(rows)s::jsonb) as r(
        syned_user_id text, synced boolean, result text, error text, flag boolean, remote_accessed_at timestamptz)
on conflict (syned_user_id) do update
   set last_synced_at = greatest(s.last_synced_at, excluded.last_synced_at),
       last_remote_accessed_at = greatest(s.last_remote_accessed_at, excluded.last_remote_accessed_at),
       last_attempt_at = excluded.last_attempt_at,
       last_result = excluded.last_result,
       error_message = excluded.error_message,
       needs_totals_refresh = s.needs_totals_refresh or excluded.needs_totals_refresh,
       needs_totals_refresh_since = case when s.needs_totals_refresh then s.needs_totals_refresh_since
                                         else excluded.needs_totals_refresh_since end,
       totals_refresh_requested_at = coalesce(excluded.totals_refresh_requested_at, s.totals_refresh_requested_at),
       updated_at = now()

-- name: bump_last_activity --
insert into game_platform_stats as st (competitor_id, last_activity)
select c.id, r.last_activity
  from jsonb_to_recordset(%(rows)s::jsonb) as r(competitor_id uuid, last_activity timestamptz)
  join competitors c on c.id = r.competitor_id
on conflict (competitor_id) do update
   set last_activity = greatest(st.last_activity, excluded.last_activity), updated_at = now()
 where st.last_activity is null or st.last_activity < excluded.last_activity

-- name: mark_competitors --
update competitors c
   set game_platform_synced_at = case when r.synced then now() else c.game_platform_synced_at end,
       game_platform_sync_error = r.error
  from jsonb_to_recordset(%(rows)s::jsonb) as r(competitor_id uuid, synced boolean, error text)
 where c.id = r.competitor_id

-- name: linked_teams_page --
-- `coach_approved`: the team's coach is a coach the app has approved (an unset
-- `is_approved` counts as approved; `role` may be the app's enum, hence ::text).
select t.id, t.game_platform_id,
       exists (select 1 from profiles p
                where p.id = t.coach_id and p.role::text = 'coach' and p.is_approved is not false) as coach_approved,
       coalesce(jsonb_agg(jsonb_build_object('competitor_id', c.id, 'syned_user_id', nullif(c.game_platform_id, ''))
                          order by c.id) filter (where c.id is not null), '[]'::jsonb) as members
  from teams t
  left join team_members m on m.team_id = t.id
  left join competitors c on c.id = m.competitor_id
 where t.game_platform_id is not null and t.game_platform_id <> ''
   and (%(coach_id)s::uuid is null or t.coach_id = %(coach_id)s::uuid)
   and (%(after)s::uuid is null or t.id > %(after)s::uuid)
 group by t.id
 order by t.id
 limit %(limit)s

-- name: linked_team_of_users --
-- Which of our synced teams (linked, coach approved) each platform user is on
-- locally: that team's sync assigns them. A competitor is on at most one team
-- in the app; should there be more, one is picked consistently.
select distinct on (c.game_platform_id) c.game_platform_id as syned_user_id, t.game_platform_id as team
  from team_members m
  join competitors c on c.id = m.competitor_id
  join teams t on t.id = m.team_id
 where c.game_platform_id is not null and c.game_platform_id <> ''
   and t.game_platform_id is not null and t.game_platform_id <> ''
   and exists (select 1 from profiles p
                where p.id = t.coach_id and p.role::text = 'coach' and p.is_approved is not false)
 order by c.game_platform_id, t.game_platform_id

-- name: mark_teams --
update teams t
   set game_platform_synced_at = case when r.synced then now() else t.game_platform_synced_at end,
       game_platform_sync_error = r.error
  from jsonb_to_recordset(%(rows)s::jsonb) as r(team_id uuid, synced boolean, error text)
 where t.id = r.team_id

-- name: mark_team_members --
update team_members m
   set game_platform_synced_at = case when r.synced then now() else m.game_platform_synced_at end,
       game_platform_sync_error = r.error
  from jsonb_to_recordset(%(rows)s::jsonb) as r(team_id uuid, competitor_id uuid, synced boolean, error text)
 where m.team_id = r.team_id and m.competitor_id = r.competitor_id

-- name: flagged_users_page --
-- Flagged users, oldest flag first, after a (flag time, user) cursor, flagged no
-- later than the sweep's start (so a user re-flagged mid-sweep waits for the next
-- sweep instead of being visited twice). With a coach, only users one of whose
-- competitors is that coach's; the competitors listed are all of the user's.
select s.syned_user_id, s.needs_totals_refresh_since, s.totals_refresh_requested_at,
       coalesce((select array_agg(c.id order by c.id) from competitors c
                  where c.game_platform_id = s.syned_user_id), '{}') as competitor_ids
  from game_platform_sync_state s
 where s.needs_totals_refresh
   and s.needs_totals_refresh_since <= %(bound)s
   and (%(after_since)s::timestamptz is null
        or (s.needs_totals_refresh_since, s.syned_user_id) > (%(after_since)s::timestamptz, %(after_user)s::text))
   and (%(coach_id)s::uuid is null or exists (
        select 1 from competitors c
         where c.game_platform_id = s.syned_user_id and c.coach_id = %(coach_id)s::uuid))
 order by s.needs_totals_refresh_since, s.syned_user_id
 limit %(limit)s

-- name: linked_users_for_sweep_page --
-- `forceAll`: every platform user linked to a competitor in scope, flagged or
-- not, in platform-id order after a cursor; its flag, if raised, is cleared too.
select u.syned_user_id, s.needs_totals_refresh_since, s.totals_refresh_requested_at,
       (select array_agg(c.id order by c.id) from competitors c where c.game_platform_id = u.syned_user_id)
           as competitor_ids
  from (select distinct c.game_platform_id as syned_user_id
          from competitors c
         where c.game_platform_id is not null and c.game_platform_id <> ''
           and (%(coach_id)s::uuid is null or c.coach_id = %(coach_id)s::uuid)
           and (%(after)s::text is null or c.game_platform_id > %(after)s::text)
         order by 1
         limit %(limit)s) u
  left join game_platform_sync_state s on s.syned_user_id = u.syned_user_id
 order by u.syned_user_id

-- name: write_stats --
insert into game_platform_stats as st (
    competitor_id, challenges_completed, monthly_ctf_challenges, total_score, last_activity, synced_at)
select c.id, r.challenges_completed, r.monthly_ctf_challenges, r.total_score, r.last_activity, now()
  from jsonb_to_recordset(%(rows)s::jsonb) as r(
        competitor_id uuid, challenges_completed integer, monthly_ctf_challenges integer,
        total_score integer, last_activity timestamptz)
  join competitors c on c.id = r.competitor_id
on conflict (competitor_id) do update
   set challenges_completed = excluded.challenges_completed,
       monthly_ctf_challenges = excluded.monthly_ctf_challenges,
       total_score = excluded.total_score,
       last_activity = greatest(st.last_activity, excluded.last_activity),
       synced_at = excluded.synced_at,
       updated_at = now()

-- name: clear_flags --
-- Clears a flag only if no new activity was recorded since the sweep read it.
update game_platform_sync_state s
   set needs_totals_refresh = false,
       needs_totals_refresh_since = null,
       totals_refreshed_at = case when r.refreshed then now() else s.totals_refreshed_at end,
       totals_error = r.error,
       updated_at = now()
  from jsonb_to_recordset(%(rows)s::jsonb) as r(syned_user_id text, requested_at timestamptz, refreshed boolean, error text)
 where s.syned_user_id = r.syned_user_id
   and s.totals_refresh_requested_at is not distinct from r.requested_at

-- name: record_totals_errors --
update game_platform_sync_state s
   set totals_error = r.error, updated_at = now()
  from jsonb_to_recordset(%(rows)s::jsonb) as r(syned_user_id text, error text)
 where s.syned_user_id = r.syned_user_id
