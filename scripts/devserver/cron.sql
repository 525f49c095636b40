-- name: cron_problem --
-- NULL when the expression is valid, else the sentence saying what is wrong.
select job_queue_cron_problem(%(cron)s)

-- name: cron_next --
-- The first minute strictly after `after` that the expression matches (UTC).
select job_queue_cron_next(%(cron)s, %(after)s)

-- name: schedule_definitions --
-- The pg_cron migration's schedules, as migrated into this database.
select job_name, schedule, command, needs_pg_net, description from job_queue_schedule_definitions()

-- name: queue_schedules --
-- The queue's own schedules, for the banner.
select name, cron, enabled from job_queue_schedules order by name
