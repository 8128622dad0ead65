-- The share of plays whose song is in the catalogue (matched to songs on title, artist and
-- duration when the lake was built).
-- Runs as it is in psql, over the UTC days [from, to) (to excluded):
--   psql -v from=2018-11-01 -v to=2018-12-01 -f warehouse/reports/catalogue_share.sql
SELECT
  count(*)::int AS plays,
  count(p.song_id)::int AS in_catalogue,
  round(count(p.song_id) / nullif(count(*), 0)::numeric, 4)::float8 AS share
FROM songplays p
WHERE p.start_time >= (:'from'::date)::timestamp AT TIME ZONE 'UTC'
  AND p.start_time < (:'to'::date)::timestamp AT TIME ZONE 'UTC';
