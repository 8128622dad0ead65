"""Reading log_data for a range of UTC days: lines -> deduplicated, classified events.

Only the files of the days asked for are read (`log_data/YYYY/MM/YYYY-MM-DD-events.json`);
a missing day is simply zero rows. Every line ends up either as a usable event (`reason` NULL)
or in quarantine with exactly one reason.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from sparkify_jobs import schemas
from sparkify_jobs.parsing import (
    as_double,
    as_int,
    as_long,
    first_failure,
    is_double,
    is_int,
    is_long,
)

NEXT_SONG = "NextSong"

# Reasons, in the order they are tested (a line gets the first that applies).
REASONS = (
    "empty_line",
    "malformed_json",
    "missing_ts",
    "wrong_type_ts",
    "missing_session_id",
    "wrong_type_session_id",
    "wrong_type_user_id",
    "missing_user_id",
    "missing_item_in_session",
    "wrong_type_item_in_session",
    "wrong_type_length",
    "ts_outside_file_day",
    "duplicate_event_id",
)


def day_path(raw_uri: str, day: date) -> str:
    return f"{raw_uri}/log_data/{day:%Y}/{day:%m}/{day:%Y-%m-%d}-events.json"


def songplay_id(ts: str, user_id: str, session_id: str, item_in_session: str) -> F.Column:
    """Identity of a play, stable across runs: sha256 of ts|userId|sessionId|itemInSession
    (their canonical integer text), first 32 hex chars."""
    key = F.concat_ws(
        "|",
        F.col(ts).cast("string"),
        F.col(user_id).cast("string"),
        F.col(session_id).cast("string"),
        F.col(item_in_session).cast("string"),
    )
    return F.substring(F.sha2(key, 256), 1, 32)


def deduplicate(lines: DataFrame) -> DataFrame:
    """(source_file, line) -> (source_file, file_day, line, copies): identical lines of a
    file's day count once. Keying on the file's day (not the whole run) keeps the result the
    same whether the days are run one at a time or together."""
    file_day = F.regexp_extract("source_file", r"([0-9]{4}-[0-9]{2}-[0-9]{2})-events\.json$", 1)
    return (
        lines.withColumn("file_day", file_day)
        .groupBy("file_day", "line")
        .agg(F.min("source_file").alias("source_file"), F.count(F.lit(1)).alias("copies"))
    )


def classify(deduped: DataFrame) -> DataFrame:
    """(source_file, file_day, line, copies) -> typed events with `reason` (NULL when usable).

    A NextSong event needs ts, sessionId, a numeric userId and itemInSession: those make the
    play's identity. Other pages (Home, Login, ...) need ts and sessionId only; their userId
    is legitimately empty for guests and logged-out visitors, and they never become plays.
    """
    j = F.from_json(
        "line",
        schemas.LOG_EVENT_JSON,
        {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": schemas.CORRUPT},
    )
    e = deduped.withColumn("j", j)
    page, ts, sid = F.col("j.page"), F.col("j.ts"), F.col("j.sessionId")
    uid, item, length = F.col("j.userId"), F.col("j.itemInSession"), F.col("j.length")
    is_play = F.coalesce(page == NEXT_SONG, F.lit(False))
    uid_given = uid.isNotNull() & (F.trim(uid) != "")
    start_time = F.timestamp_millis(as_long(ts))
    reason = first_failure(
        (F.trim("line") == "", "empty_line"),
        (F.col("j").isNull() | F.col(f"j.{schemas.CORRUPT}").isNotNull(), "malformed_json"),
        (ts.isNull(), "missing_ts"),
        (~is_long(ts), "wrong_type_ts"),
        (sid.isNull(), "missing_session_id"),
        (~is_int(sid), "wrong_type_session_id"),
        (uid_given & ~is_int(F.trim(uid)), "wrong_type_user_id"),
        (is_play & ~uid_given, "missing_user_id"),
        (is_play & item.isNull(), "missing_item_in_session"),
        (is_play & ~is_int(item), "wrong_type_item_in_session"),
        (is_play & length.isNotNull() & ~is_double(length), "wrong_type_length"),
        # A file holds one UTC day; an event from another day would land in a partition
        # this run doesn't own.
        (F.date_format(start_time, "yyyy-MM-dd") != F.col("file_day"), "ts_outside_file_day"),
    )
    typed = e.select(
        "source_file",
        "file_day",
        "line",
        "copies",
        reason.alias("reason"),
        is_play.alias("is_play"),
        page.alias("page"),
        as_long(ts).alias("ts"),
        as_int(F.trim(uid)).alias("user_id"),
        as_int(sid).alias("session_id"),
        as_int(item).alias("item_in_session"),
        F.col("j.firstName").alias("first_name"),
        F.col("j.lastName").alias("last_name"),
        F.col("j.gender").alias("gender"),
        F.col("j.level").alias("level"),
        F.col("j.location").alias("location"),
        F.col("j.userAgent").alias("user_agent"),
        F.col("j.song").alias("song"),
        F.col("j.artist").alias("artist"),
        as_double(length).alias("length"),
    )
    good_play = F.col("reason").isNull() & F.col("is_play")
    typed = typed.withColumn("start_time", F.timestamp_millis("ts")).withColumn(
        "songplay_id",
        F.when(good_play, songplay_id("ts", "user_id", "session_id", "item_in_session")),
    )
    # Two different lines with one play identity would make songplay_id ambiguous: keep the
    # smallest line, quarantine the others. Non-plays are keyed by their line (no clash).
    w = Window.partitionBy(F.coalesce("songplay_id", "line")).orderBy("line")
    clash = good_play & (F.row_number().over(w) > 1)
    return typed.withColumn(
        "reason", F.when(clash, F.lit("duplicate_event_id")).otherwise(F.col("reason"))
    )


def plays(events: DataFrame) -> DataFrame:
    """The usable NextSong events."""
    return events.where(F.col("reason").isNull() & F.col("is_play"))


def quarantine_rows(events: DataFrame) -> DataFrame:
    """Bad lines as quarantined: the raw bytes of the line (see schemas.QUARANTINE)."""
    return events.where(F.col("reason").isNotNull()).select(
        "source_file",
        F.col("line").cast("binary").alias("line"),
        "reason",
        F.col("file_day").alias("day"),
    )
