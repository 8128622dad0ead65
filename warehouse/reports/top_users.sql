-- Top users by plays: the ten users who played most (ties by user_id), with their current level.
-- Runs as it is in psql, over the UTC days [from, to) (to excluded):
--   psql -v from=2018-11-01 -v to=2018-12-01 -f warehouse/reports/top_users.sql
SELECT u.user_id, u.first_name, u.last_name, u.level, count(*)::int AS plays
FROM songplays p
JOIN users u ON u.user_id = p.user_id
WHERE p.start_time >= (:'from'::date)::timestamp AT TIME ZONE 'UTC'
  AND p.start_time < (:'to'::date)::timestamp AT TIME ZONE 'UTC'
GROUP BY u.user_id, u.first_name, u.last_name, u.level
ORDER BY plays DESC, u.user_id
LIMIT 10;
