"""users(user_id, first_name, last_name, gender, level): one row per user who played a song.

Name, gender and level come from the user's latest play by ts over every day materialized so
far, in whatever order the days were run. Ties on ts go to the larger sessionId, then
itemInSession, then songplay_id, so the choice never depends on file or partition order.

Two pieces of state, both written only by users runs:

- `_state/user_latest/day=YYYY-MM-DD/`: each user's latest play of that day, the ground truth.
  A run replaces the partitions of its days.
- `_state/user_current/`: one row per user, the chosen latest play over all days (the state
  columns plus `day`, the day it came from). A run over days D computes the new one from the
  old one and D's state rows only (`merge_current`), so its cost grows with the number of
  users, not with the length of history; users is then a projection of it. Without a
  user_current (an older lake, or a run that died while swapping it in) it is rebuilt once
  from all of user_latest (`latest`).
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparkify_jobs import graph

# The table's columns as declared in assets/assets.json (stated there once).
COLUMNS = tuple(n for n, _ in graph.assets()["users"].columns)
# What decides "latest", in order; together they are unique per play (songplay_id hashes the
# other three and the user), and no column is ever NULL for a usable play.
ORDER = ("ts", "session_id", "item_in_session", "songplay_id")
STATE_COLUMNS = (*COLUMNS, *ORDER)
CURRENT_COLUMNS = (*STATE_COLUMNS, "day")


def _latest(cols: Sequence[str]) -> F.Column:
    """The latest row of a group as one struct: `max` over a struct compares its fields in order,
    so with ORDER first it picks the latest play. An aggregate, not a window: each task keeps one
    row per group before the shuffle, so only one row per (day, user) moves, not every play."""
    return F.max(F.struct(*ORDER, *(c for c in cols if c not in ORDER))).alias("_latest")


def _unpack(cols: Sequence[str]) -> list[F.Column]:
    return [F.col(c) if c == "user_id" else F.col(f"_latest.{c}").alias(c) for c in cols]


def latest_per_day(plays: DataFrame) -> DataFrame:
    """Usable NextSong events -> each user's latest play per UTC day (the state rows)."""
    rest = [c for c in STATE_COLUMNS if c != "user_id"]
    return (
        plays.groupBy(F.col("file_day").alias("day"), "user_id")
        .agg(_latest(rest))
        .select(*_unpack(STATE_COLUMNS), "day")
    )


def latest(state: DataFrame) -> DataFrame:
    """State rows (user_latest and/or user_current rows, any days) -> one row per user, the
    latest, with the day it came from: a user_current."""
    rest = [c for c in CURRENT_COLUMNS if c != "user_id"]
    return state.groupBy("user_id").agg(_latest(rest)).select(*_unpack(CURRENT_COLUMNS))


def build_users(state: DataFrame) -> DataFrame:
    """State rows (any days) or a user_current -> users."""
    return latest(state).select(*COLUMNS)


def _order_key(alias: str) -> F.Column:
    return F.struct(*[F.col(f"{alias}.{c}") for c in ORDER])


def merge_current(
    old: DataFrame, day_rows: DataFrame, days: Sequence[str]
) -> tuple[DataFrame, DataFrame]:
    """old user_current + the user_latest rows of `days` (as now written) -> (merged, moved).

    A user whose old row came from a day outside `days` keeps it unless a row of `days` is
    later: those days can only have added candidates. A user whose old row came from one of
    `days` loses it (the day was re-run, its data may have changed) and takes the latest of
    the new rows of `days`, which is right if that is no earlier than the old row: every other
    day was already beaten by the old row. Otherwise (the play was removed or corrected to an
    earlier one) the user is in `moved`, (user_id) only, and must be recomputed from all of
    user_latest; `merged` has no row for them then.
    """
    in_days = F.col("day").isin(list(days))
    merged = latest(old.where(~in_days).unionByName(day_rows.select(*CURRENT_COLUMNS)))
    redone = old.where(in_days).alias("o")
    moved = (
        redone.join(merged.alias("m"), F.col("o.user_id") == F.col("m.user_id"), "left")
        .where(F.col("m.user_id").isNull() | (_order_key("m") < _order_key("o")))
        .select(F.col("o.user_id").alias("user_id"))
    )
    return merged.join(moved, "user_id", "left_anti"), moved
