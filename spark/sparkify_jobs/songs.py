"""songs(song_id, title, artist_id, year, duration), partitioned by year.

Not by year and artist_id, as the original ETL did: with one directory per artist a catalogue of
50,000 songs becomes tens of thousands of files of a song or two, slow to write and slower to
read. One file per year, sorted by artist_id then song_id, lets a reader filtering on artist_id
skip row groups by their statistics instead.

One row per song_id. When song_data holds a song_id more than once, the row kept is the most
complete one (most of title, artist_id, year, duration non-NULL), then the one from the
lexicographically smallest source file, then the smallest line.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparkify_jobs import graph

# The table's columns as declared in assets/assets.json (stated there once).
COLUMNS = tuple(n for n, _ in graph.assets()["songs"].columns)
PARTITION_BY = graph.assets()["songs"].partition_by
# Within each file: what a reader filters on, so Parquet row-group statistics prune.
SORT_BY = ("artist_id", "song_id")


def _completeness(*cols: str) -> F.Column:
    return sum((F.col(c).isNotNull().cast("int") for c in cols), F.lit(0))


def pick_songs(song_rows: DataFrame) -> DataFrame:
    """Usable song rows (parse_songs output with reason NULL) -> one chosen row per song_id,
    all input columns kept (songplays needs the chosen row's artist_name).

    `min` over a struct led by the ordering fields picks the first row in that order; an
    aggregate rather than a window, so only one row per song and task is shuffled."""
    rest = [c for c in song_rows.columns if c not in ("song_id", "source_file", "line")]
    first = F.min(
        F.struct(
            (-_completeness("title", "artist_id", "year", "duration")).alias("_rank"),
            "source_file",
            "line",
            *rest,
        )
    ).alias("_first")
    return (
        song_rows.groupBy("song_id")
        .agg(first)
        .select(
            *(
                F.col(f"_first.{c}").alias(c) if c != "song_id" else F.col(c)
                for c in song_rows.columns
            )
        )
    )


def build_songs(song_rows: DataFrame) -> DataFrame:
    return pick_songs(song_rows).select(*COLUMNS)
