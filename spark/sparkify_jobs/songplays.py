"""songplays(songplay_id, start_time, user_id, level, song_id, artist_id, session_id, location,
user_agent), partitioned by year, month, day (UTC): exactly the usable NextSong events.

song_id/artist_id come from `_state/song_match`, the chosen row of each song as the songs step
wrote it (with the song's own artist_name, which the songs table does not carry): a song matches
a play when title == song, the song's artist_name == artist and |length - duration| < 1 s.
A play keeps exactly one row: with several matches the smallest |length - duration| wins,
then the smallest song_id; with none, song_id and artist_id are NULL.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparkify_jobs import graph

# The table's columns as declared in assets/assets.json (stated there once).
PARTITION_BY = graph.assets()["songplays"].partition_by
# The columns in the files: the partition columns are derived from start_time.
COLUMNS = tuple(n for n, _ in graph.assets()["songplays"].columns if n not in PARTITION_BY)


def with_day_partition(df: DataFrame, ts_col: str = "start_time") -> DataFrame:
    """year, month, day of a timestamp in the session time zone (UTC, see session.py)."""
    return (
        df.withColumn("year", F.year(ts_col))
        .withColumn("month", F.month(ts_col))
        .withColumn("day", F.dayofmonth(ts_col))
    )


def match_songs(plays: DataFrame, songs: DataFrame) -> DataFrame:
    """plays (songplay_id, song, artist, length, ...) x songs (song_id, title, artist_name,
    artist_id, duration) -> plays with song_id, artist_id; never more rows than plays.

    The catalogue is grouped into one row per (title, artist_name) holding every candidate, and
    broadcast: each play meets at most one row, and the best candidate is chosen inside that row
    (no shuffle of the plays, as a join-then-rank would need)."""
    candidates = songs.groupBy(
        F.col("title").alias("_m_title"), F.col("artist_name").alias("_m_artist")
    ).agg(
        F.collect_list(
            F.struct(
                F.col("duration").alias("duration"),
                F.col("song_id").alias("song_id"),
                F.col("artist_id").alias("artist_id"),
            )
        ).alias("_m")
    )
    joined = plays.join(
        F.broadcast(candidates),
        (F.col("song") == F.col("_m_title")) & (F.col("artist") == F.col("_m_artist")),
        "left",
    )
    within = F.filter("_m", lambda c: F.abs(F.col("length") - c["duration"]) < 1.0)
    # Smallest |length - duration|, then smallest song_id: struct order does both.
    ranked = F.transform(
        within,
        lambda c: F.struct(
            F.abs(F.col("length") - c["duration"]).alias("d"),
            c["song_id"].alias("song_id"),
            c["artist_id"].alias("artist_id"),
        ),
    )
    best = F.array_min(ranked)
    return (
        joined.withColumn("_best", best)
        .withColumn("song_id", F.col("_best.song_id"))
        .withColumn("artist_id", F.col("_best.artist_id"))
        .drop("_best", "_m", "_m_title", "_m_artist")
    )


def build_songplays(plays: DataFrame, songs: DataFrame) -> DataFrame:
    """Usable NextSong events + chosen song rows -> songplays with partition columns."""
    return with_day_partition(match_songs(plays, songs)).select(*COLUMNS, *PARTITION_BY)
