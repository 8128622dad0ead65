"""users(user_id, first_name, last_name, gender, level): one row per user who played a song.

Name, gender and level come from the user's latest play by ts over every day materialized so
far, in whatever order the days were run. Each users run writes, per day of its range, each
user's latest play of that day to `_state/user_latest/day=YYYY-MM-DD/`, then rebuilds users
from the whole state. Ties on ts go to the larger sessionId, then itemInSession, then
songplay_id, so the choice never depends on file or partition order.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

COLUMNS = ("user_id", "first_name", "last_name", "gender", "level")
STATE_COLUMNS = (
    *COLUMNS,
    "ts",
    "session_id",
    "item_in_session",
    "songplay_id",
)


def _latest_first() -> list[F.Column]:
    # A function: Columns can only be built once a SparkContext exists.
    return [
        F.col("ts").desc(),
        F.col("session_id").desc(),
        F.col("item_in_session").desc(),
        F.col("songplay_id").desc(),
    ]


def latest_per_day(plays: DataFrame) -> DataFrame:
    """Usable NextSong events -> each user's latest play per UTC day (the state rows)."""
    w = Window.partitionBy("file_day", "user_id").orderBy(*_latest_first())
    return (
        plays.withColumn("_rn", F.row_number().over(w))
        .where("_rn = 1")
        .select(*STATE_COLUMNS, F.col("file_day").alias("day"))
    )


def build_users(state: DataFrame) -> DataFrame:
    """All state rows (any days) -> users."""
    w = Window.partitionBy("user_id").orderBy(*_latest_first())
    return state.withColumn("_rn", F.row_number().over(w)).where("_rn = 1").select(*COLUMNS)
