-- Top songs by plays: the ten songs of the catalogue played most (ties by song_id).
-- Runs as it is in psql, over the UTC days [from, to) (to excluded):
--   psql -v from=2018-11-01 -v to=2018-12-01 -f warehouse/reports/top_songs.sql
SELECT s.song_id, s.title, a.name AS artist, count(*)::int AS plays
FROM songplays p
JOIN songs s ON s.song_id = p.song_id
LEFT JOIN artists a ON a.artist_id = s.artist_id
WHERE p.start_time >= (:'from'::date)::timestamp AT TIME ZONE 'UTC'
  AND p.start_time < (:'to'::date)::timestamp AT TIME ZONE 'UTC'
GROUP BY s.song_id, s.title, a.name
ORDER BY plays DESC, s.song_id COLLATE "C"
LIMIT 10;
