"""Parsing song_data: one JSON object per line, parsed against SONG_JSON."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparkify_jobs import schemas
from sparkify_jobs.parsing import as_double, as_int, blank_to_null, first_failure

SONG_GLOB = "song_data/*/*/*/*.json"


def parse_songs(lines: DataFrame) -> DataFrame:
    """(source_file, line) -> one row per line with typed song fields and `reason`.

    `reason` is NULL for a usable song row, else one of: empty_line, malformed_json,
    missing_song_id. Numeric fields of the wrong type become NULL (the song is still usable).
    """
    j = F.from_json("line", schemas.SONG_JSON, schemas.PERMISSIVE)
    parsed = lines.withColumn("j", j)
    song_id = blank_to_null(F.col("j.song_id"))
    return parsed.select(
        "source_file",
        "line",
        first_failure(
            (F.trim("line") == "", "empty_line"),
            (F.col("j").isNull() | F.col(f"j.{schemas.CORRUPT}").isNotNull(), "malformed_json"),
            (song_id.isNull(), "missing_song_id"),
        ).alias("reason"),
        song_id.alias("song_id"),
        F.col("j.title").alias("title"),
        blank_to_null(F.col("j.artist_id")).alias("artist_id"),
        F.col("j.artist_name").alias("artist_name"),
        F.col("j.artist_location").alias("artist_location"),
        as_double(F.col("j.artist_latitude")).alias("artist_latitude"),
        as_double(F.col("j.artist_longitude")).alias("artist_longitude"),
        as_double(F.col("j.duration")).alias("duration"),
        as_int(F.col("j.year")).alias("year"),
    )
