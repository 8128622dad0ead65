-- Plays by day of the week (UTC, ISO: 1 = Monday ... 7 = Sunday), every day listed.
-- Runs as it is in psql, over the UTC days [from, to) (to excluded):
--   psql -v from=2018-11-01 -v to=2018-12-01 -f warehouse/reports/plays_by_weekday.sql
SELECT d.weekday, d.name, count(p.start_time)::int AS plays
FROM (
  VALUES (1, 'Monday'), (2, 'Tuesday'), (3, 'Wednesday'), (4, 'Thursday'),
    (5, 'Friday'), (6, 'Saturday'), (7, 'Sunday')
) AS d (weekday, name)
LEFT JOIN (
  time t
  JOIN songplays p ON p.start_time = t.start_time
    AND p.start_time >= (:'from'::date)::timestamp AT TIME ZONE 'UTC'
  AND p.start_time < (:'to'::date)::timestamp AT TIME ZONE 'UTC'
) ON t.weekday = d.weekday
GROUP BY d.weekday, d.name
ORDER BY d.weekday;
