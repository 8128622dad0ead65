"""Explicit schemas for every read: raw inputs and the lake's own tables.

Raw JSON is judged by the text of its fields: Spark's JSON parser renders any scalar as its text
for a string field, so a wrong type ("ts": "abc") stays visible and is quarantined by name
instead of silently turning into NULL. Log events, the bulk of the input, are parsed with their
numbers typed first and as text only where that parse rejects them (logdata._event_fields).
"""

from pyspark.sql import types as T

from sparkify_jobs import graph

CORRUPT = "_corrupt_record"
# from_json options for raw lines: a line that does not parse is kept, its text in CORRUPT.
PERMISSIVE = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}


def _strings(*names: str) -> T.StructType:
    return T.StructType([T.StructField(n, T.StringType()) for n in (*names, CORRUPT)])


# The fields of an event the jobs read, with the type each has in a well-formed event.
LOG_EVENT_FIELDS = {
    "artist": T.StringType(),
    "firstName": T.StringType(),
    "gender": T.StringType(),
    "itemInSession": T.LongType(),
    "lastName": T.StringType(),
    "length": T.DoubleType(),
    "level": T.StringType(),
    "location": T.StringType(),
    "page": T.StringType(),
    "sessionId": T.LongType(),
    "song": T.StringType(),
    "ts": T.LongType(),
    "userAgent": T.StringType(),
    "userId": T.StringType(),
}
# Parsed with these types first: numbers as numbers cost a fraction of rendering them as text.
# A line this parse rejects (malformed, or a field of another type) is parsed again as text.
LOG_EVENT_TYPED = T.StructType(
    [T.StructField(n, t) for n, t in (*LOG_EVENT_FIELDS.items(), (CORRUPT, T.StringType()))]
)
LOG_EVENT_JSON = _strings(*LOG_EVENT_FIELDS)

SONG_JSON = _strings(
    "num_songs",
    "artist_id",
    "artist_latitude",
    "artist_longitude",
    "artist_location",
    "artist_name",
    "song_id",
    "title",
    "duration",
    "year",
)


def _schema(*fields: tuple[str, T.DataType]) -> T.StructType:
    return T.StructType([T.StructField(n, t) for n, t in fields])


S, INT, L, D, TS = T.StringType(), T.IntegerType(), T.LongType(), T.DoubleType(), T.TimestampType()
B = T.BinaryType()

_TYPES = {"string": S, "int32": INT, "int64": L, "double": D, "timestamp": TS}


def table(asset: str) -> T.StructType:
    """The asset's table as declared in assets/assets.json (the one statement of it)."""
    return _schema(*((n, _TYPES[t]) for n, t in graph.assets()[asset].columns))


SONGS = table("songs")
ARTISTS = table("artists")
USERS = table("users")
TIME = table("time")
SONGPLAYS = table("songplays")
# `_state/user_latest/day=YYYY-MM-DD/`: `day` stays a string (no partition type inference).
USER_LATEST = _schema(
    ("user_id", INT),
    ("first_name", S),
    ("last_name", S),
    ("gender", S),
    ("level", S),
    ("ts", L),
    ("session_id", INT),
    ("item_in_session", INT),
    ("songplay_id", S),
    ("day", S),
)
# `_state/user_current/`: one row per user, `day` = the day its chosen play came from.
USER_CURRENT = USER_LATEST
# Bad lines keep their raw bytes (BINARY): they may not be valid UTF-8, and a STRING column
# holding such bytes cannot be read by pyarrow or DuckDB.
QUARANTINE = _schema(("source_file", S), ("line", B), ("reason", S), ("day", S))
QUARANTINE_SONGS = _schema(("source_file", S), ("line", B), ("reason", S))
# `_state/song_match/`: what songplays matches plays against, one row per chosen song (written by
# the songs step, so a daily songplays run never reads song_data).
SONG_MATCH = _schema(
    ("song_id", S),
    ("title", S),
    ("artist_id", S),
    ("artist_name", S),
    ("duration", D),
    ("year", INT),
)
