"""Unit tests of the pure transformations on tiny DataFrames."""

from __future__ import annotations

import json

import pytest
from pyspark import StorageLevel

from sparkify_jobs import (
    artists,
    logdata,
    schemas,
    session,
    songdata,
    songplays,
    songs,
    sources,
    time_table,
    users,
)

LOG_FILE = "file:/raw/log_data/2018/11/2018-11-10-events.json"
TS_2330 = 1541892600000  # 2018-11-10T23:30:00Z, a Saturday; 15:30 on the 10th in Los Angeles


@pytest.fixture(autouse=True)
def utc(spark):
    session.configure(spark)


def event(**over):
    e = {
        "artist": "Artist",
        "auth": "Logged In",
        "firstName": "Ann",
        "gender": "F",
        "itemInSession": 1,
        "lastName": "Lee",
        "length": 200.0,
        "level": "free",
        "location": "Somewhere",
        "method": "PUT",
        "page": "NextSong",
        "registration": 1540919166796.0,
        "sessionId": 7,
        "song": "Title",
        "status": 200,
        "ts": TS_2330,
        "userAgent": "UA",
        "userId": "5",
    }
    e.update(over)
    return json.dumps(e)


def events_of(spark, lines, source=LOG_FILE):
    df = spark.createDataFrame(
        [(source, line) for line in lines], "source_file string, line string"
    )
    events, _ = logdata.resolve_identities(logdata.classify(logdata.with_file_day(df)))
    return events


def song_rows(spark, objs):
    lines = [(f"file:/raw/song_data/A/A/A/{i}.json", json.dumps(o)) for i, o in enumerate(objs)]
    df = spark.createDataFrame(lines, "source_file string, line string")
    return songdata.parse_songs(df).where("reason IS NULL")


def test_event_at_2330_utc_lands_on_its_utc_day(spark):
    # A session left in a local zone must be reset by the job's own configuration.
    spark.conf.set("spark.sql.session.timeZone", "America/Los_Angeles")
    session.configure(spark)
    plays = logdata.plays(events_of(spark, [event()]))
    sp = songplays.build_songplays(plays, song_rows(spark, [])).first()
    assert (sp.year, sp.month, sp.day) == (2018, 11, 10)
    t = time_table.build_time(plays).first()
    assert (t.year, t.month, t.day, t.hour, t.week, t.weekday) == (2018, 11, 10, 23, 45, 6)
    assert users.latest_per_day(plays).first().day == "2018-11-10"


def test_iso_weekday_monday_is_1_sunday_is_7(spark):
    df = spark.createDataFrame([("2018-11-12 12:00:00",), ("2018-11-18 12:00:00",)], "s string")
    got = [
        r.w for r in df.select(time_table.iso_weekday(df.s.cast("timestamp")).alias("w")).collect()
    ]
    assert got == [1, 7]


def test_classify_reasons_one_per_line(spark):
    lines = [
        event(),
        '{"ts": 1,',
        event(ts=None),
        event(ts="abc"),
        event(sessionId=None),
        event(sessionId="x"),
        event(userId="abc"),
        event(userId=""),
        event(userId="", page="Home", itemInSession=None, length=None),
        event(itemInSession=None),
        event(length="long"),
        event(ts=TS_2330 + 3_600_000),  # 00:30 on the 11th, in the file of the 10th
        event(location="elsewhere"),  # same identity as event(), another line
        "",
    ]
    got = {r.line: r.reason for r in events_of(spark, lines).collect()}
    assert got == {
        lines[0]: None,
        lines[1]: "malformed_json",
        lines[2]: "missing_ts",
        lines[3]: "wrong_type_ts",
        lines[4]: "missing_session_id",
        lines[5]: "wrong_type_session_id",
        lines[6]: "wrong_type_user_id",
        lines[7]: "missing_user_id",
        lines[8]: None,  # a guest's page view: not a play, not bad data
        lines[9]: "missing_item_in_session",
        lines[10]: "wrong_type_length",
        lines[11]: "ts_outside_file_day",
        # the larger of two lines sharing one play identity
        max(lines[0], lines[12]): "duplicate_event_id",
        "": "empty_line",
    } | ({lines[0]: None} if lines[0] < lines[12] else {lines[12]: None, lines[0]: None})


def test_a_number_is_judged_by_its_text_however_the_parser_reads_it(spark):
    # Numbers are parsed as numbers first, as text only where that parse balks: the outcome
    # must be the text rules' either way (parsing.py), including where the two parsers differ.
    def play(item: int, **over) -> str:
        return event(itemInSession=item, **over)

    nan = play(9).replace('"length": 200.0', '"length": NaN')
    lines = {
        play(1, ts=str(TS_2330)): (None, TS_2330, 7, 1, 200.0),  # digits in quotes are a number
        play(2, sessionId="8", length="200.5"): (None, TS_2330, 8, 2, 200.5),
        play(3, length=201): (None, TS_2330, 7, 3, 201.0),
        play(4, sessionId=999_999_999): (None, TS_2330, 999_999_999, 4, 200.0),
        play(5, ts=float(TS_2330)): ("wrong_type_ts", None, 7, 5, 200.0),
        play(6, ts=TS_2330 * 1000): ("wrong_type_ts", None, 7, 6, 200.0),  # 16 digits
        play(7, sessionId=1_000_000_000): ("wrong_type_session_id", TS_2330, None, 7, 200.0),
        event(itemInSession=8.0): ("wrong_type_item_in_session", TS_2330, 7, None, 200.0),
        nan: ("wrong_type_length", TS_2330, 7, 9, None),
        play(10, length="NaN"): ("wrong_type_length", TS_2330, 7, 10, None),
        play(11, length="Infinity"): ("wrong_type_length", TS_2330, 7, 11, None),
        play(12, sessionId=""): ("wrong_type_session_id", TS_2330, None, 12, 200.0),
    }
    got = {
        r.line: (r.reason, r.ts, r.session_id, r.item_in_session, r.length)
        for r in events_of(spark, list(lines)).collect()
    }
    assert got == lines


def test_songplay_id_is_stable_and_32_hex(spark):
    a = logdata.plays(events_of(spark, [event()])).first().songplay_id
    b = logdata.plays(events_of(spark, [event(location="ignored by the id")])).first().songplay_id
    c = logdata.plays(events_of(spark, [event(itemInSession=2)])).first().songplay_id
    assert a == b != c
    assert len(a) == 32 and all(ch in "0123456789abcdef" for ch in a)


def test_song_match_picks_closest_duration_then_smallest_song_id(spark):
    plays = logdata.plays(
        events_of(
            spark,
            [
                event(itemInSession=1, length=200.0),
                event(itemInSession=2, song="Tie", length=100.0),
                event(itemInSession=3, song="Nothing"),
                event(itemInSession=4, length=250.0),
            ],
        )
    )
    catalog = song_rows(
        spark,
        [
            {"song_id": "S3", "title": "Title", "artist_name": "Artist", "artist_id": "A3",
             "duration": 200.9},
            {"song_id": "S2", "title": "Title", "artist_name": "Artist", "artist_id": "A2",
             "duration": 200.2},
            {"song_id": "S1", "title": "Title", "artist_name": "Other", "artist_id": "A1",
             "duration": 200.0},
            {"song_id": "T9", "title": "Tie", "artist_name": "Artist", "artist_id": "A9",
             "duration": 100.5},
            {"song_id": "T8", "title": "Tie", "artist_name": "Artist", "artist_id": "A8",
             "duration": 99.5},
        ],
    )  # fmt: skip
    got = {
        r.item_in_session: (r.song_id, r.artist_id)
        for r in songplays.match_songs(plays, catalog).collect()
    }
    assert got == {1: ("S2", "A2"), 2: ("T8", "A8"), 3: (None, None), 4: (None, None)}


def test_artist_is_the_most_complete_row_then_smallest_song_id(spark):
    rows = song_rows(
        spark,
        [
            {"song_id": "S1", "artist_id": "AR", "artist_name": "Name", "artist_location": ""},
            {"song_id": "S3", "artist_id": "AR", "artist_name": "Name 3",
             "artist_location": "Paris", "artist_latitude": 48.8},
            {"song_id": "S2", "artist_id": "AR", "artist_name": "Name 2",
             "artist_location": "Rome", "artist_latitude": 41.9},
            {"song_id": "S4", "artist_id": "B", "artist_name": "B", "artist_location": "  "},
        ],
    )  # fmt: skip
    got = {r.artist_id: r.asDict() for r in artists.build_artists(rows).collect()}
    assert got["AR"] == {
        "artist_id": "AR",
        "name": "Name 2",
        "location": "Rome",
        "latitude": 41.9,
        "longitude": None,
    }
    assert got["B"]["location"] is None  # blank means unknown


def test_song_duplicate_keeps_most_complete_then_first_file(spark):
    rows = song_rows(
        spark,
        [
            {"song_id": "S", "title": "First", "artist_id": "A", "duration": 1.0},
            {"song_id": "S", "title": "Second", "artist_id": "A", "duration": 1.0, "year": 1999},
            {"song_id": "S", "title": "Third", "artist_id": "A", "duration": 1.0, "year": 2000},
        ],
    )
    assert [r.title for r in songs.build_songs(rows).collect()] == ["Second"]


def test_song_parse_rejects_and_tolerates(spark):
    lines = spark.createDataFrame(
        [
            ("f1", json.dumps({"song_id": "S", "year": "unknown", "duration": "x"})),
            ("f2", json.dumps({"title": "no id"})),
            ("f3", "{not json"),
        ],
        "source_file string, line string",
    )
    got = {r.source_file: r for r in songdata.parse_songs(lines).collect()}
    assert got["f1"].reason is None and got["f1"].year is None and got["f1"].duration is None
    assert got["f2"].reason == "missing_song_id"
    assert got["f3"].reason == "malformed_json"


def test_user_latest_breaks_ts_ties_deterministically(spark):
    lines = [
        event(ts=TS_2330 - 1000, level="free", sessionId=9),
        event(ts=TS_2330, level="paid", sessionId=7, itemInSession=3),
        event(ts=TS_2330, level="free", sessionId=7, itemInSession=2),
        event(ts=TS_2330, level="free", sessionId=6, itemInSession=9),
    ]
    for order in (lines, lines[::-1]):
        state = users.latest_per_day(logdata.plays(events_of(spark, order)))
        assert [(r.user_id, r.level) for r in users.build_users(state).collect()] == [(5, "paid")]


def test_merge_current_keeps_old_rows_outside_the_days_and_flags_moved_users(spark):
    def row(uid, level, ts, day):
        return (uid, "F", "L", "F", level, ts, 1, 0, f"id{uid}-{ts}", day)

    old = spark.createDataFrame(
        [
            row(1, "free", 100, "2018-11-10"),  # the 10th now has an earlier play only
            row(2, "free", 50, "2018-11-09"),  # outside the days, beaten by the 10th
            row(3, "free", 200, "2018-11-10"),  # same play, corrected level
            row(4, "free", 300, "2018-11-10"),  # gone from the 10th
            row(5, "free", 70, "2018-11-09"),  # untouched
        ],
        schemas.USER_CURRENT,
    )
    day_rows = spark.createDataFrame(
        [
            row(1, "paid", 90, "2018-11-10"),
            row(2, "paid", 60, "2018-11-10"),
            row(3, "paid", 200, "2018-11-10"),
            row(6, "paid", 10, "2018-11-10"),  # a new user
        ],
        schemas.USER_CURRENT,
    )
    merged, moved = users.merge_current(old, day_rows, ["2018-11-10"])
    got = {r.user_id: (r.level, r.ts, r.day) for r in merged.collect()}
    assert got == {
        2: ("paid", 60, "2018-11-10"),
        3: ("paid", 200, "2018-11-10"),
        5: ("free", 70, "2018-11-09"),
        6: ("paid", 10, "2018-11-10"),
    }
    assert sorted(r.user_id for r in moved.collect()) == [1, 4]


@pytest.mark.parametrize("by", [(), ("d",)])
def test_audit_of_a_write_finds_what_profile_finds(spark, tmp_path, by):
    """The key checks now run inside the write (checks.Audit): a repeated or NULL key must still
    fail them, and rows, versions and the sample must be those of `profile`."""
    from sparkify_jobs import lake
    from sparkify_jobs.checks import Audit, key_checks, profile

    df = spark.createDataFrame(
        [
            ("k1", "a", 1),
            ("k2", "b", 1),
            ("k2", "b", 1),  # the same row twice
            ("k2", "c", 1),  # and once more, different: one repeated key
            ("k3", "d", 2),
            ("k3", "e", 2),
            (None, "x", 2),
            ("k4", "f", 3),
        ],
        "k string, v string, d int",
    )
    audit = Audit("k", ("k", "v"), by=by)
    lake.write_parquet(df, str(tmp_path / "t"), partition_by=by, sort_by=("v",), audit=audit)
    got, want = audit.profile(), profile(df, "k", ("k", "v"), by=by)
    assert (got.rows, got.versions) == (want.rows, want.versions)
    assert (got.nulls, got.dups, got.dup_sample) == (1, 2, ["k2", "k3"])
    assert (want.nulls, want.dups, want.dup_sample) == (1, 2, ["k2", "k3"])
    unique, not_null = key_checks("songs", "songs", "song_id", got)
    assert not unique.passed and unique.failing_count == 2 and unique.sample == ["k2", "k3"]
    assert not not_null.passed and not_null.failing_count == 1
    # What was written is the rows, without the audit's helper columns.
    written = spark.read.parquet(str(tmp_path / "t"))
    assert sorted(written.columns) == ["d", "k", "v"] and written.count() == 8

    # Nothing written, nothing measured: an empty profile, and no wait for metrics.
    assert Audit("k", ("k", "v")).profile().rows == {}


def test_a_partitioned_write_spreads_over_the_cores_and_writes_one_file_a_partition(
    spark, tmp_path
):
    from sparkify_jobs import lake

    cores = spark.sparkContext.defaultParallelism
    key = "spark.sql.shuffle.partitions"
    before = spark.conf.get(key)
    spark.conf.set(key, "1")  # as a small input tunes it
    try:
        # Partitions beyond the input's tasks are spread over the cores, never more tasks
        # than partitions; what the input's size asks stays the floor.
        assert lake.write_tasks(spark, 46) == cores
        assert lake.write_tasks(spark, 1) == 1 and lake.write_tasks(spark, None) == cores
        df = spark.createDataFrame([(i, 2000 + i % 6) for i in range(60)], "id int, year int")
        lake.write_parquet(df, str(tmp_path / "t"), ("year",), ("id",), partitions=6)
    finally:
        spark.conf.set(key, before)
    assert lake.write_tasks(spark, 1) == int(before)
    years = sorted(p for p in (tmp_path / "t").iterdir() if p.is_dir())
    assert [p.name for p in years] == [f"year={y}" for y in range(2000, 2006)]
    assert all(len(list(p.glob("*.parquet"))) == 1 for p in years)
    assert spark.read.parquet(str(tmp_path / "t")).count() == 60


def test_an_input_large_beside_the_heap_is_cached_on_disk_not_in_memory(spark):
    # Spark undercounts a cached columnar block's heap: a large input cached in memory ran a
    # 1 GiB driver out of heap instead of falling back to disk.
    heap = spark.sparkContext._jvm.java.lang.Runtime.getRuntime().maxMemory()
    limit = heap // session.IN_MEMORY_CACHE_HEAP_SHARE
    assert session.cache_level(spark, 0) == StorageLevel.MEMORY_AND_DISK
    assert session.cache_level(spark, limit) == StorageLevel.MEMORY_AND_DISK
    assert session.cache_level(spark, limit + 1) == StorageLevel.DISK_ONLY


def test_what_a_run_keeps_in_memory_is_its_rows_and_is_let_go_at_release(spark):
    # The test session's master is local: the driver's JVM runs every task.
    df = spark.createDataFrame([(i, f"v{i}") for i in range(50)], "k int, v string")
    persistent = spark.sparkContext._jsc.sc().getPersistentRDDs
    before = persistent().size()
    kept, release = session.keep(df.where("k % 2 = 0"), StorageLevel.MEMORY_AND_DISK)
    assert kept.count() == 25 and sorted(r.k for r in kept.collect()) == list(range(0, 50, 2))
    # Rows kept by a local checkpoint: the later queries plan over a leaf, not the columnar cache.
    assert kept._jdf.queryExecution().logical().nodeName() == "LogicalRDD"
    assert not kept.is_cached and persistent().size() == before + 1
    release()
    assert persistent().size() == before
    # On disk (an input large beside the heap) it stays Spark's columnar cache, which a lost
    # block can recompute.
    cached, release = session.keep(df, StorageLevel.DISK_ONLY)
    assert cached.is_cached and cached.storageLevel == StorageLevel.DISK_ONLY
    release()
    assert not cached.is_cached
    # So does a frame of any size (a whole lake table the warehouse loads).
    cached, release = session.keep(df, StorageLevel.MEMORY_AND_DISK, rows=False)
    assert cached.is_cached and cached.storageLevel == StorageLevel.MEMORY_AND_DISK
    release()


@pytest.mark.parametrize(
    ("master", "in_driver"),
    [
        ("local", True),
        ("local[2]", True),
        ("local[*]", True),
        ("local[4,2]", True),
        ("local-cluster[2,1,1024]", False),
        ("yarn", False),
        ("spark://host:7077", False),
    ],
)
def test_rows_are_kept_as_a_local_checkpoint_only_where_tasks_run_in_the_driver(master, in_driver):
    # Elsewhere an executor lost with its blocks would fail the run: a checkpoint has no lineage.
    assert session.tasks_run_in_driver(master) is in_driver


def test_frames_made_from_nothing_need_no_python_worker(spark):
    # createDataFrame of a list is an RDD of the Python side's rows: its first job waits for a
    # Python worker to start. These are planned in the JVM alone.
    empty = sources.no_rows(spark, schemas.USER_LATEST)
    assert [(f.name, f.dataType) for f in empty.schema.fields] == [
        (f.name, f.dataType) for f in schemas.USER_LATEST.fields
    ]
    assert empty.count() == 0
    ids = sources.values(spark, "songplay_id", ["b", "a", "b"])
    assert ids.schema.simpleString() == "struct<songplay_id:string>"
    assert sorted(r[0] for r in ids.collect()) == ["a", "b", "b"]
    none = sources.values(spark, "songplay_id", [])
    assert none.schema.simpleString() == "struct<songplay_id:string>" and none.count() == 0
    for df in (empty, ids, sources.read_lines(spark, [])):
        assert "ExistingRDD" not in df._jdf.queryExecution().executedPlan().toString()
        # Nor a typed Dataset (spark.range): its encoder's first use costs about a second.
        assert "Range" not in df._jdf.queryExecution().analyzed().toString()


def test_only_a_job_wholly_on_the_local_filesystem_writes_without_checksum_files():
    from pyspark import SparkConf

    here = ["file:/raw", "file:/lake", "file:/lake/_reports/r.json"]
    assert session.local_fs_settings(here, SparkConf()) == session.LOCAL_FS_IMPL
    # S3A buffers uploads through the checksummed local filesystem: not with an S3 location.
    assert session.local_fs_settings([*here[:2], "s3a://b/r.json"], SparkConf()) == {}
    assert session.local_fs_settings(["s3a://b/raw", *here[1:]], SparkConf()) == {}
    assert session.local_fs_settings([], SparkConf()) == {}
    # The submitter's --conf wins.
    mine = SparkConf().set("spark.hadoop.fs.file.impl", "org.apache.hadoop.fs.LocalFileSystem")
    assert session.local_fs_settings(here, mine) == {}


def test_shuffle_partitions_follow_the_input_size_up_to_two_per_core():
    mib = 2**20
    assert session.shuffle_partitions(0, 2) == 1
    assert session.shuffle_partitions(2 * mib, 2) == 1  # a day of events: one task a stage
    assert session.shuffle_partitions(31 * mib, 2) == 2  # two weeks: both cores
    assert session.shuffle_partitions(2**30, 2) == 4
    assert session.shuffle_partitions(2**30, 16) == 32  # 1 GiB at 16 MiB each
    assert session.shuffle_partitions(4 * 2**30, 16) == 32  # two per core at most


def test_expressions_are_compiled_from_a_smaller_input_when_the_jit_has_no_c2(spark):
    # conftest starts the driver as the local EMR starts its drivers: C1 only.
    assert session.jit_stops_at_c1(spark)
    mib = 2**20
    # A day of events is interpreted on either JIT; two weeks only where C2 optimises the
    # interpreter; beyond SMALL_INPUT_BYTES always compiled.
    assert session.expression_codegen(2 * mib, c1_only=True) == "NO_CODEGEN"
    assert session.expression_codegen(31 * mib, c1_only=True) == "FALLBACK"
    assert session.expression_codegen(31 * mib, c1_only=False) == "NO_CODEGEN"
    assert session.expression_codegen(300 * mib, c1_only=False) == "FALLBACK"
    key = session.CODEGEN_FACTORY_MODE
    # tune_for_input sets these on the session every test shares: put them back after.
    tuned = (
        key,
        "spark.sql.adaptive.enabled",
        "spark.sql.codegen.wholeStage",
        "spark.sql.shuffle.partitions",
    )
    before = {k: spark.conf.get(k, None) for k in tuned}
    try:
        session.tune_for_input(spark, 31 * mib)
        assert spark.conf.get(key) == "FALLBACK"
        session.tune_for_input(spark, 2 * mib)
        assert spark.conf.get(key) == "NO_CODEGEN"
    finally:
        for k, v in before.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)
