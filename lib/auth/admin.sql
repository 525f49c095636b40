-- name: profile_role --
-- The role of a user's profile, or no row without a profile.
select role from public.profiles where id = %(user_id)s
