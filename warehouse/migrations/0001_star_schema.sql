-- 0001: the star schema for song-play analysis.
--
-- Applied by the warehouse load (spark/sparkify_jobs/warehouse.py) before it loads anything, in
-- one transaction with its row in schema_migrations; a migration once applied is never edited
-- (its checksum is recorded and checked): a change is a new file.
--
-- The dimensions are keyed as in the lake; the fact (songplays) is partitioned by month of its
-- UTC start_time, each month's partition created by the loader when a day of it is first loaded
-- (ensure_songplays_partitions below). Every foreign key goes from the fact to a dimension.

CREATE TABLE artists (
  artist_id text PRIMARY KEY,
  name text,
  location text,
  latitude double precision,
  longitude double precision
);

CREATE TABLE songs (
  song_id text PRIMARY KEY,
  title text,
  artist_id text,
  year integer,
  duration double precision
);

CREATE TABLE users (
  user_id integer PRIMARY KEY,
  first_name text,
  last_name text,
  gender text,
  level text NOT NULL
);

-- One row per distinct play timestamp; all parts in UTC, week and weekday ISO (1 = Monday).
CREATE TABLE time (
  start_time timestamptz PRIMARY KEY,
  hour smallint NOT NULL CHECK (hour BETWEEN 0 AND 23),
  day smallint NOT NULL CHECK (day BETWEEN 1 AND 31),
  week smallint NOT NULL CHECK (week BETWEEN 1 AND 53),
  month smallint NOT NULL CHECK (month BETWEEN 1 AND 12),
  year smallint NOT NULL,
  weekday smallint NOT NULL CHECK (weekday BETWEEN 1 AND 7)
);

-- A partitioned table's primary key must include its partition key: songplay_id alone is unique
-- (the lake checks it), start_time rides along.
CREATE TABLE songplays (
  songplay_id text NOT NULL,
  start_time timestamptz NOT NULL REFERENCES time (start_time),
  user_id integer NOT NULL REFERENCES users (user_id),
  level text,
  song_id text REFERENCES songs (song_id),
  artist_id text REFERENCES artists (artist_id),
  session_id integer NOT NULL,
  location text,
  user_agent text,
  PRIMARY KEY (songplay_id, start_time)
) PARTITION BY RANGE (start_time);

-- The reports filter on a range of start_time and group by song, artist, user or location; the
-- loader's day replacement deletes by start_time; removing a dimension row checks the fact.
CREATE INDEX songplays_start_time ON songplays (start_time);
CREATE INDEX songplays_user_id ON songplays (user_id, start_time);
CREATE INDEX songplays_song_id ON songplays (song_id, start_time);
CREATE INDEX songplays_artist_id ON songplays (artist_id, start_time);

-- The months [first, last] of songplays as partitions songplays_yYYYYmMM, created when missing.
-- Serialised by an advisory lock: two loads of days of one month may create it at once.
CREATE FUNCTION ensure_songplays_partitions(first date, last date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  m date := date_trunc('month', first)::date;
  name text;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('sparkify.songplays.partitions'));
  WHILE m <= last LOOP
    name := format('songplays_y%sm%s', to_char(m, 'YYYY'), to_char(m, 'MM'));
    IF to_regclass(name) IS NULL THEN
      EXECUTE format(
        'CREATE TABLE %I PARTITION OF songplays FOR VALUES FROM (%L) TO (%L)',
        name,
        (m::timestamp AT TIME ZONE 'UTC'),
        ((m + interval '1 month')::timestamp AT TIME ZONE 'UTC')
      );
    END IF;
    m := (m + interval '1 month')::date;
  END LOOP;
END
$$;

-- Where loads stage their rows (unlogged tables named after the run) before one transaction
-- moves them in.
CREATE SCHEMA sparkify_staging;
