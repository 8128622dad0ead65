"""The real sample (../shared/data/sparkify-sample): sizes, keys, users' latest level,
order independence of users, and re-runs that replace exactly their days."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest
from conftest import Job, read_table, rows, sample_dir

from sparkify_jobs import schemas

START, END = "2018-11-01", "2018-12-01"


def expected_users(raw: Path, days: set[str] | None = None) -> dict[int, dict]:
    """Each user's fields at their latest NextSong by ts, straight from the JSON files."""
    latest: dict[int, tuple] = {}
    for f in sorted((raw / "log_data").glob("*/*/*-events.json")):
        if days is not None and f.name[:10] not in days:
            continue
        for line in f.read_text().splitlines():
            if not line.strip():
                continue
            e = json.loads(line)
            if e["page"] != "NextSong":
                continue
            uid = int(e["userId"])
            key = (e["ts"], e["sessionId"], e["itemInSession"])
            if uid not in latest or key > latest[uid][0]:
                latest[uid] = (key, e)
    return {
        uid: {
            "user_id": uid,
            "first_name": e["firstName"],
            "last_name": e["lastName"],
            "gender": e["gender"],
            "level": e["level"],
        }
        for uid, (_, e) in latest.items()
    }


@pytest.fixture(scope="module")
def sample(request, tmp_path_factory):
    raw = sample_dir()  # skips before starting Spark when the sample is absent
    spark = request.getfixturevalue("spark")
    root = tmp_path_factory.mktemp("sample")
    lake = root / "lake"
    code, report = Job(spark, root)("songs,artists,users,time,songplays", raw, lake, START, END)
    return raw, lake, code, report


def dup_keys(df, key):
    return df.groupBy(key).count().where("count > 1 OR " + key + " IS NULL").count()


def test_full_month_sizes_and_keys(spark, sample):
    _, lake, code, report = sample
    assert code == 0, report
    assert report["status"] == "succeeded" and report["failed_checks"] == []
    sizes = {"songs": 71, "artists": 69, "users": 96, "time": 6813, "songplays": 6820}
    keys = {
        "songs": "song_id",
        "artists": "artist_id",
        "users": "user_id",
        "time": "start_time",
        "songplays": "songplay_id",
    }
    for table, n in sizes.items():
        df = read_table(spark, lake / table)
        assert df.count() == n, table
        assert dup_keys(df, keys[table]) == 0, table
        assert report["assets"][table]["rows"] == n, table
        assert all(c["passed"] for c in report["assets"][table]["checks"]), table
    songplays = read_table(spark, lake / "songplays")
    assert songplays.where("song_id IS NOT NULL").count() == 1
    assert songplays.where("artist_id IS NOT NULL").count() == 1
    assert sum(report["assets"]["songplays"]["rows_per_day"].values()) == 6820
    assert len(report["assets"]["songplays"]["rows_per_day"]) == 30
    assert report["assets"]["songplays"]["input_files"] == 30
    assert report["assets"]["songs"]["input_files"] == 71
    assert report["quarantine"]["rows"] == 0
    assert report["spark_version"] == spark.version


def test_songs_one_file_per_partition(sample):
    _, lake, _, _ = sample
    parts = Counter(p.parent for p in (lake / "songs").rglob("*.parquet"))
    assert parts and set(parts.values()) == {1}
    assert len(parts) == len({p for p in (lake / "songs").glob("year=*")})


def test_users_have_their_latest_level(spark, sample):
    raw, lake, _, _ = sample
    want = expected_users(raw)
    got = {r["user_id"]: r for r in rows(read_table(spark, lake / "users", schemas.USERS))}
    assert got == want
    assert len(got) == 96


def test_users_same_when_days_run_in_reverse(spark, sample, tmp_path):
    raw, lake, _, _ = sample
    reverse_lake = tmp_path / "lake"
    job = Job(spark, tmp_path)
    chunks = [
        ("2018-11-21", "2018-12-01"),
        ("2018-11-11", "2018-11-21"),
        ("2018-11-01", "2018-11-11"),
    ]
    # Meaningful only if "last write wins" would be wrong for someone.
    last_chunk = expected_users(raw, {f"2018-11-{d:02d}" for d in range(1, 16)})
    assert any(last_chunk[u]["level"] != expected_users(raw)[u]["level"] for u in last_chunk)
    modes = []
    for start, end in chunks:
        code, report = job("users", raw, reverse_lake, start, end)
        assert code == 0, report
        u = report["assets"]["users"]["details"]
        modes.append((u["state_mode"], u["state_days_read"], u["users_recomputed"]))
    # Each chunk reads only its own 10 state days (the first builds user_current from them),
    # not the 20 and 30 days materialized by then.
    assert modes == [("rebuilt", 10, 0), ("incremental", 10, 0), ("incremental", 10, 0)]
    got = rows(read_table(spark, reverse_lake / "users", schemas.USERS))
    assert got == rows(read_table(spark, lake / "users", schemas.USERS))
    assert len(list((reverse_lake / "_state/user_latest").glob("day=*"))) == 30


def file_digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.parquet"))
    }


def test_rerun_of_a_day_is_identical_and_touches_only_that_day(spark, sample, tmp_path):
    raw, lake, _, _ = sample
    day = "year=2018/month=11/day=15"
    before = {}
    for table in ("songplays", "time"):
        digests = file_digests(lake / table)
        before[table] = (
            {k: v for k, v in digests.items() if not k.startswith(day + "/")},
            rows(read_table(spark, lake / table / day)),
        )
    users_before = rows(read_table(spark, lake / "users", schemas.USERS))
    state_before = file_digests(lake / "_state/user_latest")

    code, report = Job(spark, tmp_path)(
        "users,time,songplays", raw, lake, "2018-11-15", "2018-11-16"
    )
    assert code == 0, report
    assert report["assets"]["songplays"]["rows_per_day"] == {"2018-11-15": 479}

    for table, (others, day_rows) in before.items():
        digests = file_digests(lake / table)
        assert {k: v for k, v in digests.items() if not k.startswith(day + "/")} == others
        assert rows(read_table(spark, lake / table / day)) == day_rows  # incl. songplay_id
        assert sum(k.startswith(day + "/") for k in digests) == 1
    assert rows(read_table(spark, lake / "users", schemas.USERS)) == users_before
    u = report["assets"]["users"]["details"]
    assert (u["state_mode"], u["state_days_read"], u["users_recomputed"]) == ("incremental", 1, 0)
    state_after = file_digests(lake / "_state/user_latest")
    unchanged = {k for k in state_before if not k.startswith("day=2018-11-15/")}
    assert {k: state_after[k] for k in unchanged} == {k: state_before[k] for k in unchanged}
