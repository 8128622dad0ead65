"""songplays(songplay_id, start_time, user_id, level, song_id, artist_id, session_id, location,
user_agent), partitioned by year, month, day (UTC): exactly the usable NextSong events.

song_id/artist_id come from `_state/song_match`, the chosen row of each song as the songs step
wrote it (with the song's own artist_name, which the songs table does not carry): a song matches
a play when title == song, the song's artist_name == artist and |length - duration| < 1 s.
A play keeps exactly one row: with several matches the smallest |length - duration| wins,
then the smallest song_id; with none, song_id and artist_id are NULL.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

COLUMNS = (
    "songplay_id",
    "start_time",
    "user_id",
    "level",
    "song_id",
    "artist_id",
    "session_id",
    "location",
    "user_agent",
)
PARTITION_BY = ("year", "month", "day")


def with_day_partition(df: DataFrame, ts_col: str = "start_time") -> DataFrame:
    """year, month, day of a timestamp in the session time zone (UTC, see session.py)."""
    return (
        df.withColumn("year", F.year(ts_col))
        .withColumn("month", F.month(ts_col))
        .withColumn("day", F.dayofmonth(ts_col))
    )


def match_songs(plays: DataFrame, songs: DataFrame) -> DataFrame:
    """plays (songplay_id, song, artist, length, ...) x songs (song_id, title, artist_name,
    artist_id, duration) -> plays with song_id, artist_id; never more rows than plays."""
    s = songs.select(
        F.col("song_id").alias("_m_song_id"),
        F.col("artist_id").alias("_m_artist_id"),
        F.col("title").alias("_m_title"),
        F.col("artist_name").alias("_m_artist"),
        F.col("duration").alias("_m_duration"),
    )
    diff = F.abs(F.col("length") - F.col("_m_duration"))
    joined = plays.join(
        s,
        (F.col("song") == F.col("_m_title"))
        & (F.col("artist") == F.col("_m_artist"))
        & (F.abs(F.col("length") - F.col("_m_duration")) < 1.0),
        "left",
    )
    w = Window.partitionBy("songplay_id").orderBy(
        diff.asc_nulls_last(), F.col("_m_song_id").asc_nulls_last()
    )
    return (
        joined.withColumn("_rn", F.row_number().over(w))
        .where("_rn = 1")
        .withColumn("song_id", F.col("_m_song_id"))
        .withColumn("artist_id", F.col("_m_artist_id"))
        .drop("_rn", "_m_song_id", "_m_artist_id", "_m_title", "_m_artist", "_m_duration")
    )


def build_songplays(plays: DataFrame, songs: DataFrame) -> DataFrame:
    """Usable NextSong events + chosen song rows -> songplays with partition columns."""
    return with_day_partition(match_songs(plays, songs)).select(*COLUMNS, *PARTITION_BY)
