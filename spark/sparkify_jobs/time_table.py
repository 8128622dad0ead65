"""time(start_time, hour, day, week, month, year, weekday), partitioned by year, month, day.

One row per distinct start_time of the plays. All parts are UTC. `week` is the ISO-8601 week
(weekofyear); `weekday` is ISO too: 1 = Monday ... 7 = Sunday (Spark's dayofweek counts
1 = Sunday, so it is shifted, no locale involved).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparkify_jobs import graph

# The table's columns as declared in assets/assets.json (stated there once).
COLUMNS = tuple(n for n, _ in graph.assets()["time"].columns)
PARTITION_BY = graph.assets()["time"].partition_by


def iso_weekday(c: F.Column) -> F.Column:
    return (F.dayofweek(c) + 5) % 7 + 1


def build_time(plays: DataFrame) -> DataFrame:
    st = F.col("start_time")
    return (
        plays.select("start_time")
        .where(st.isNotNull())
        .distinct()
        .select(
            st,
            F.hour(st).alias("hour"),
            F.dayofmonth(st).alias("day"),
            F.weekofyear(st).alias("week"),
            F.month(st).alias("month"),
            F.year(st).alias("year"),
            iso_weekday(st).alias("weekday"),
        )
    )
