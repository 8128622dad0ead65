"""artists(artist_id, name, location, latitude, longitude), one row per artist_id.

An artist appears once per song in song_data, not always with the same details. The row kept
is the most complete (most of name, location, latitude, longitude known; empty strings count
as unknown and are stored as NULL), then the row of the smallest song_id, then the smallest
source file and line.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparkify_jobs import graph
from sparkify_jobs.parsing import blank_to_null

# The table's columns as declared in assets/assets.json (stated there once).
COLUMNS = tuple(n for n, _ in graph.assets()["artists"].columns)


def build_artists(song_rows: DataFrame) -> DataFrame:
    """Usable song rows (parse_songs output with reason NULL) -> artists."""
    rows = song_rows.where(F.col("artist_id").isNotNull()).select(
        "artist_id",
        blank_to_null(F.col("artist_name")).alias("name"),
        blank_to_null(F.col("artist_location")).alias("location"),
        F.col("artist_latitude").alias("latitude"),
        F.col("artist_longitude").alias("longitude"),
        "song_id",
        "source_file",
        "line",
    )
    known = sum(
        (F.col(c).isNotNull().cast("int") for c in ("name", "location", "latitude", "longitude")),
        F.lit(0),
    )
    # `min` over a struct led by the ordering fields: the first row in that order, as an
    # aggregate (one row per artist and task is shuffled, not every song row).
    first = F.min(
        F.struct(
            (-known).alias("_rank"),
            "song_id",
            "source_file",
            "line",
            "name",
            "location",
            "latitude",
            "longitude",
        )
    ).alias("_first")
    return (
        rows.groupBy("artist_id")
        .agg(first)
        .select("artist_id", *(F.col(f"_first.{c}").alias(c) for c in COLUMNS if c != "artist_id"))
    )
