-- Top artists by plays: the ten artists whose songs were played most (ties by artist_id).
-- Runs as it is in psql, over the UTC days [from, to) (to excluded):
--   psql -v from=2018-11-01 -v to=2018-12-01 -f warehouse/reports/top_artists.sql
SELECT a.artist_id, a.name, count(*)::int AS plays
FROM songplays p
JOIN artists a ON a.artist_id = p.artist_id
WHERE p.start_time >= (:'from'::date)::timestamp AT TIME ZONE 'UTC'
  AND p.start_time < (:'to'::date)::timestamp AT TIME ZONE 'UTC'
GROUP BY a.artist_id, a.name
ORDER BY plays DESC, a.artist_id COLLATE "C"
LIMIT 10;
