-- Plays by hour of the day (UTC), every hour listed, 0 when nothing was played.
-- Runs as it is in psql, over the UTC days [from, to) (to excluded):
--   psql -v from=2018-11-01 -v to=2018-12-01 -f warehouse/reports/plays_by_hour.sql
SELECT h.hour, count(p.start_time)::int AS plays
FROM generate_series(0, 23) AS h (hour)
LEFT JOIN (
  time t
  JOIN songplays p ON p.start_time = t.start_time
    AND p.start_time >= (:'from'::date)::timestamp AT TIME ZONE 'UTC'
  AND p.start_time < (:'to'::date)::timestamp AT TIME ZONE 'UTC'
) ON t.hour = h.hour
GROUP BY h.hour
ORDER BY h.hour;
