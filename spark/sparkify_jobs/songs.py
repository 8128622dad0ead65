"""songs(song_id, title, artist_id, year, duration), partitioned by year, artist_id.

One row per song_id. When song_data holds a song_id more than once, the row kept is the most
complete one (most of title, artist_id, year, duration non-NULL), then the one from the
lexicographically smallest source file, then the smallest line.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

COLUMNS = ("song_id", "title", "artist_id", "year", "duration")
PARTITION_BY = ("year", "artist_id")


def _completeness(*cols: str) -> F.Column:
    return sum((F.col(c).isNotNull().cast("int") for c in cols), F.lit(0))


def pick_songs(song_rows: DataFrame) -> DataFrame:
    """Usable song rows (parse_songs output with reason NULL) -> one chosen row per song_id,
    all input columns kept (songplays needs the chosen row's artist_name)."""
    w = Window.partitionBy("song_id").orderBy(
        _completeness("title", "artist_id", "year", "duration").desc(),
        F.col("source_file").asc(),
        F.col("line").asc(),
    )
    return song_rows.withColumn("_rn", F.row_number().over(w)).where("_rn = 1").drop("_rn")


def build_songs(song_rows: DataFrame) -> DataFrame:
    return pick_songs(song_rows).select(*COLUMNS)
