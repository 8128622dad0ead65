-- Top locations by plays: the ten locations (as the app reports them) with most plays.
-- Runs as it is in psql, over the UTC days [from, to) (to excluded):
--   psql -v from=2018-11-01 -v to=2018-12-01 -f warehouse/reports/top_locations.sql
SELECT p.location, count(*)::int AS plays
FROM songplays p
WHERE p.start_time >= (:'from'::date)::timestamp AT TIME ZONE 'UTC'
  AND p.start_time < (:'to'::date)::timestamp AT TIME ZONE 'UTC'
  AND p.location IS NOT NULL
GROUP BY p.location
ORDER BY plays DESC, p.location COLLATE "C"
LIMIT 10;
