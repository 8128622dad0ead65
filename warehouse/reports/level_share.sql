-- Free vs paid: each level's plays (the level at the time of the play) and users (each user who
-- played counted once, at the level of their latest play in the range), with their shares.
-- Runs as it is in psql, over the UTC days [from, to) (to excluded):
--   psql -v from=2018-11-01 -v to=2018-12-01 -f warehouse/reports/level_share.sql
WITH plays AS (
  SELECT p.user_id, p.level, p.start_time, p.songplay_id
  FROM songplays p
  WHERE p.start_time >= (:'from'::date)::timestamp AT TIME ZONE 'UTC'
  AND p.start_time < (:'to'::date)::timestamp AT TIME ZONE 'UTC'
),
latest AS (
  SELECT DISTINCT ON (user_id) user_id, level
  FROM plays
  ORDER BY user_id, start_time DESC, songplay_id DESC
),
by_plays AS (SELECT level, count(*) AS n FROM plays GROUP BY level),
by_users AS (SELECT level, count(*) AS n FROM latest GROUP BY level)
SELECT
  l.level,
  coalesce(bp.n, 0)::int AS plays,
  round(coalesce(bp.n, 0) / nullif(sum(bp.n) OVER (), 0)::numeric, 4)::float8 AS share_of_plays,
  coalesce(bu.n, 0)::int AS users,
  round(coalesce(bu.n, 0) / nullif(sum(bu.n) OVER (), 0)::numeric, 4)::float8 AS share_of_users
FROM (SELECT level FROM by_plays UNION SELECT level FROM by_users) AS l
LEFT JOIN by_plays bp ON bp.level IS NOT DISTINCT FROM l.level
LEFT JOIN by_users bu ON bu.level IS NOT DISTINCT FROM l.level
ORDER BY l.level COLLATE "C";
