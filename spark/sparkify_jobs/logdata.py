"""Reading log_data for a range of UTC days: lines -> deduplicated, classified events.

Only the files of the days asked for are read (`log_data/YYYY/MM/YYYY-MM-DD-events.json`);
a missing day is simply zero rows. Every line ends up either as a usable event (`reason` NULL)
or in quarantine with exactly one reason.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from sparkify_jobs import schemas, sources
from sparkify_jobs.parsing import (
    as_double,
    as_int,
    as_long,
    first_failure,
    fits_int,
    fits_long,
    is_finite,
    is_int,
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


def with_file_day(lines: DataFrame) -> DataFrame:
    """(source_file, line) -> + file_day (the UTC day the file is named after) and two hashes of
    the line, which stand for it where only equality matters (counting duplicates), so the
    lines themselves never have to be shuffled."""
    file_day = F.regexp_extract("source_file", r"([0-9]{4}-[0-9]{2}-[0-9]{2})-events\.json$", 1)
    return lines.select(
        "source_file",
        file_day.alias("file_day"),
        "line",
        F.xxhash64("line").alias("_h"),
        F.hash("line").alias("_h2"),
    )


_NUMBERS = {"ts": "long", "sessionId": "int", "itemInSession": "int", "length": "double"}
_FITS = {"long": fits_long, "int": fits_int, "double": is_finite}
_AS_TEXT = {"long": as_long, "int": as_int, "double": as_double}


def _event_fields() -> tuple[F.Column, dict[str, F.Column], dict[str, F.Column]]:
    """Over `line` and `_t`, the line parsed with LOG_EVENT_TYPED: whether the line is malformed
    JSON, each field as the jobs read it (a number typed, NULL where its text is not one), and
    for each number whether it was given at all.

    Where the typed parse took the line whole and a number in it is one the text rules accept,
    the typed value is the one the text gives. Anywhere else (in practice few lines or none)
    the line is parsed again with every field as text and judged by the text rules
    (parsing.py), so a wrong type is still named; that parse is evaluated only there."""
    t = F.col("_t")
    whole = t.isNotNull() & t[schemas.CORRUPT].isNull()
    text = F.from_json("line", schemas.LOG_EVENT_JSON, schemas.PERMISSIVE)
    malformed = ~whole & (text.isNull() | text[schemas.CORRUPT].isNotNull())
    values: dict[str, F.Column] = {}
    given: dict[str, F.Column] = {}
    for name in schemas.LOG_EVENT_FIELDS:
        kind = _NUMBERS.get(name)
        if kind is None:
            values[name] = F.when(whole, t[name]).otherwise(text[name])
            continue
        typed_ok = whole & (t[name].isNull() | _FITS[kind](t[name]))
        values[name] = F.when(typed_ok, t[name].cast(kind)).otherwise(_AS_TEXT[kind](text[name]))
        given[name] = F.when(whole, t[name].isNotNull()).otherwise(text[name].isNotNull())
    return malformed, values, given


def classify(lines: DataFrame) -> DataFrame:
    """with_file_day output -> typed events with `reason` (NULL when usable); one row per line
    read (identical lines are dealt with by `resolve_identities`).

    A NextSong event needs ts, sessionId, a numeric userId and itemInSession: those make the
    play's identity. Other pages (Home, Login, ...) need ts and sessionId only; their userId
    is legitimately empty for guests and logged-out visitors, and they never become plays.
    """
    e = lines.withColumn("_t", F.from_json("line", schemas.LOG_EVENT_TYPED, schemas.PERMISSIVE))
    malformed, v, given = _event_fields()
    page, ts, sid, uid, item, length = (
        v[n] for n in ("page", "ts", "sessionId", "userId", "itemInSession", "length")
    )
    is_play = F.coalesce(page == NEXT_SONG, F.lit(False))
    uid_given = uid.isNotNull() & (F.trim(uid) != "")
    start_time = F.timestamp_millis(ts)
    reason = first_failure(
        (F.trim("line") == "", "empty_line"),
        (malformed, "malformed_json"),
        (~given["ts"], "missing_ts"),
        (ts.isNull(), "wrong_type_ts"),
        (~given["sessionId"], "missing_session_id"),
        (sid.isNull(), "wrong_type_session_id"),
        (uid_given & ~is_int(F.trim(uid)), "wrong_type_user_id"),
        (is_play & ~uid_given, "missing_user_id"),
        (is_play & ~given["itemInSession"], "missing_item_in_session"),
        (is_play & item.isNull(), "wrong_type_item_in_session"),
        (is_play & given["length"] & length.isNull(), "wrong_type_length"),
        # A file holds one UTC day; an event from another day would land in a partition
        # this run doesn't own.
        (F.date_format(start_time, "yyyy-MM-dd") != F.col("file_day"), "ts_outside_file_day"),
    )
    typed = e.select(
        "source_file",
        "file_day",
        "line",
        "_h",
        "_h2",
        reason.alias("reason"),
        is_play.alias("is_play"),
        page.alias("page"),
        ts.alias("ts"),
        as_int(F.trim(uid)).alias("user_id"),
        sid.alias("session_id"),
        item.alias("item_in_session"),
        v["firstName"].alias("first_name"),
        v["lastName"].alias("last_name"),
        v["gender"].alias("gender"),
        v["level"].alias("level"),
        v["location"].alias("location"),
        v["userAgent"].alias("user_agent"),
        v["song"].alias("song"),
        v["artist"].alias("artist"),
        length.alias("length"),
    )
    good_play = F.col("reason").isNull() & F.col("is_play")
    typed = typed.withColumn("start_time", F.timestamp_millis("ts")).withColumn(
        "songplay_id",
        F.when(good_play, songplay_id("ts", "user_id", "session_id", "item_in_session")),
    )
    return typed


def line_copies(events: DataFrame) -> DataFrame:
    """Classified events -> each distinct line (told apart by its hashes) and how many copies of
    it the files held, in `_copies`. Identical lines have one songplay_id, so keying by it too
    splits no line, and the play identities can be counted from here (`clashing_ids`)."""
    return events.groupBy("file_day", "reason", "is_play", "songplay_id", "_h", "_h2").agg(
        F.count(F.lit(1)).alias("_copies")
    )


def clashing_ids(copies: DataFrame) -> DataFrame:
    """`line_copies` -> (songplay_id) of the play identities that more than one line claims (40
    bytes a play cross the shuffle, not the lines). Filtered on the count alone: a filter on a
    grouping key would be pushed below `line_copies`, and a query that also counts lines from
    the same copies would no longer share their scan and shuffle. The lines that are not plays
    all have a NULL songplay_id and come out as one row: callers skip it."""
    return (
        copies.groupBy("songplay_id")
        .agg(F.sum("_copies").alias("_n"))
        .where(F.col("_n") > 1)
        .select("songplay_id")
    )


def bad_lines_only(events: DataFrame) -> DataFrame:
    """Classified events -> the same with `line` kept only where quarantine needs it (a reason):
    a usable event's text is most of what a cache of the events would otherwise hold and
    encode. The hashes still tell lines apart; `resolve_identities` reads again the lines it
    needs."""
    return events.withColumn("line", F.when(F.col("reason").isNotNull(), F.col("line")))


def resolve_identities(
    events: DataFrame,
    affected: list[str] | None = None,
    with_lines: DataFrame | None = None,
    keep: Callable[[DataFrame], DataFrame] = DataFrame.cache,
) -> tuple[DataFrame, int]:
    """Classified events and their `clashing_ids` -> (events in which each play identity has
    one row, identical play lines dropped). Two different lines with one play identity would
    make songplay_id ambiguous: the smallest line keeps it, the others are quarantined as
    duplicate_event_id.

    Free when no identity has several rows; else one job on those rows alone (plus one to find
    them when `affected` is not given). `events` should be cached: it is read again. Where its
    usable events have no `line` (`bad_lines_only`), `with_lines` is the classification they
    came from, read again for the affected plays' lines; what that gives is kept with `keep`."""
    good_play = F.col("reason").isNull() & F.col("is_play")
    if affected is None:
        affected = [r[0] for r in clashing_ids(line_copies(events)).collect() if r[0]]
    if not affected:
        return events, 0
    ids = sources.values(events.sparkSession, "songplay_id", affected)
    marked = events.join(F.broadcast(ids.withColumn("_aff", F.lit(True))), "songplay_id", "left")
    is_aff = good_play & F.coalesce(F.col("_aff"), F.lit(False))
    same_line = Window.partitionBy("songplay_id", "line").orderBy("source_file")
    by_line = Window.partitionBy("songplay_id").orderBy("line")
    source = events if with_lines is None else with_lines
    ranked = (
        source.join(F.broadcast(ids), "songplay_id", "left_semi")
        .where(good_play)
        .withColumn("_copy", F.row_number().over(same_line))
        .withColumn("_rank", F.dense_rank().over(by_line))
    )
    if with_lines is not None:
        ranked = keep(ranked)
    dropped = ranked.where("_copy > 1").count()
    kept = ranked.where("_copy = 1 AND _rank = 1")
    clashing = ranked.where("_copy = 1 AND _rank > 1").withColumn(
        "reason", F.lit("duplicate_event_id")
    )
    cols = events.columns
    resolved = (
        marked.where(~is_aff)
        .select(*cols)
        .unionByName(kept.select(*cols))
        .unionByName(clashing.select(*cols))
    )
    return resolved, dropped


def plays(events: DataFrame) -> DataFrame:
    """The usable NextSong events."""
    return events.where(F.col("reason").isNull() & F.col("is_play"))


def quarantine_rows(events: DataFrame) -> DataFrame:
    """Bad lines as quarantined, each distinct line of a file's day once, as its raw bytes (see
    schemas.QUARANTINE). Bad lines are few: grouping them by their text is cheap."""
    return (
        events.where(F.col("reason").isNotNull())
        .groupBy("file_day", "line")
        .agg(F.min("source_file").alias("source_file"), F.min("reason").alias("reason"))
        .select(
            "source_file",
            F.col("line").cast("binary").alias("line"),
            "reason",
            F.col("file_day").alias("day"),
        )
    )
