"""Hand-made raw data: bad lines are quarantined with a reason, good lines kept; each log asset
writes its own quarantine; empty days lose their stale partitions; a failing check exits 3 with
the offending keys; users follows re-run days through its compact state."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import read_table, rows, write_lines
from pyspark.sql import functions as F

from sparkify_jobs import runner, schemas

TS_10_2330 = 1541892600000  # 2018-11-10T23:30:00Z
TS_10_1000 = 1541844000000  # 2018-11-10T10:00:00Z
TS_11_1200 = 1541937600000  # 2018-11-11T12:00:00Z
TS_09_1200 = 1541764800000  # 2018-11-09T12:00:00Z
LOG_ASSETS = ("users", "time", "songplays")


def event(**over) -> str:
    e = {
        "artist": "Good Artist",
        "auth": "Logged In",
        "firstName": "Ann",
        "gender": "F",
        "itemInSession": 0,
        "lastName": "Lee",
        "length": 200.4,
        "level": "free",
        "location": "Town",
        "method": "PUT",
        "page": "NextSong",
        "registration": 1540919166796.0,
        "sessionId": 1,
        "song": "Good Song",
        "status": 200,
        "ts": TS_10_2330,
        "userAgent": "UA",
        "userId": "1",
    }
    e.update(over)
    return json.dumps(e)


GOOD_1 = event()
GOOD_2 = event(userId="2", ts=TS_10_1000, sessionId=2, song="Unknown", level="paid")
GUEST = event(userId="", page="Home", song=None, artist=None, length=None, sessionId=3)
BAD = {
    '{"ts": 1541892600000, "userId": "1",': "malformed_json",
    event(ts=None, itemInSession=1): "missing_ts",
    event(sessionId=None, itemInSession=2): "missing_session_id",
    event(ts="abc", itemInSession=3): "wrong_type_ts",
    event(userId="abc", itemInSession=4): "wrong_type_user_id",
    event(userId="", itemInSession=5): "missing_user_id",
    event(ts=TS_11_1200, itemInSession=6): "ts_outside_file_day",
    # Not UTF-8: kept as its raw bytes in quarantine, which any Parquet reader can read.
    '{"ts": 15418926\udcff': "malformed_json",
}
BY_REASON = {
    "malformed_json": 2,
    "missing_ts": 1,
    "missing_session_id": 1,
    "wrong_type_ts": 1,
    "wrong_type_user_id": 1,
    "missing_user_id": 1,
    "ts_outside_file_day": 1,
}


@pytest.fixture
def raw(tmp_path) -> Path:
    raw = tmp_path / "raw"
    song = {
        "num_songs": 1,
        "artist_id": "ARGOOD",
        "artist_latitude": None,
        "artist_longitude": None,
        "artist_location": "",
        "artist_name": "Good Artist",
        "song_id": "SOGOOD",
        "title": "Good Song",
        "duration": 200.0,
        "year": 2001,
    }
    write_lines(raw / "song_data/A/A/A/TRGOOD.json", [json.dumps(song)])
    write_lines(raw / "song_data/A/A/B/TRBAD.json", ['{"song_id": "SOBAD", "title": '])
    day10 = [GOOD_1, GOOD_2, GOOD_2, GUEST, *BAD]  # GOOD_2 twice: an exact duplicate
    write_lines(raw / "log_data/2018/11/2018-11-10-events.json", day10)
    day11 = [event(userId="3", ts=TS_11_1200, sessionId=4, firstName="Cy", song="Other")]
    write_lines(raw / "log_data/2018/11/2018-11-11-events.json", day11)
    return raw


def test_bad_lines_are_quarantined_good_lines_kept(spark, job, raw, tmp_path):
    lake = tmp_path / "lake"
    code, report = job("songs,artists,users,time,songplays", raw, lake, "2018-11-01", "2018-11-30")
    assert code == 0, report
    # The run's bad lines, counted once; each log asset has its own copy under the root.
    assert report["quarantine"] == {
        "rows": 8,
        "by_reason": BY_REASON,
        "location": f"{lake}/_quarantine",
    }
    for asset in LOG_ASSETS:
        a = report["assets"][asset]
        assert a["quarantined"] == BY_REASON, asset
        assert a["quarantine"] == {"rows": 8, "location": f"{lake}/_quarantine/{asset}"}, asset
    sp = report["assets"]["songplays"]
    assert sp["duplicates_dropped"] == 1
    assert sp["input_files"] == 2  # the 28 missing days are just empty
    assert sp["rows_per_day"]["2018-11-10"] == 2 and sp["rows_per_day"]["2018-11-11"] == 1
    assert sp["rows"] == 3

    assert report["assets"]["songs"]["quarantined"] == {"malformed_json": 1}
    assert report["assets"]["artists"]["quarantine"] == {
        "rows": 1,
        "location": f"{lake}/_quarantine/song_data",
    }
    assert report["assets"]["songs"]["input_files"] == 2 and report["assets"]["songs"]["rows"] == 1
    (bad_song,) = read_table(spark, lake / "_quarantine/song_data").collect()
    assert bad_song.source_file.endswith("TRBAD.json") and bad_song.reason == "malformed_json"

    q = read_table(spark, lake / "_quarantine/users", schemas.QUARANTINE)
    # Raw bytes, as read (the line may not be valid UTF-8).
    got = {
        bytes(r["line"]).decode(errors="surrogateescape"): (r["reason"], r["day"]) for r in rows(q)
    }
    assert got == {line: (reason, "2018-11-10") for line, reason in BAD.items()}
    assert all(r.source_file.endswith("2018-11-10-events.json") for r in q.collect())
    # Any Parquet reader reads the quarantine, the line that is not UTF-8 included.
    import pyarrow.dataset as ds

    lines = ds.dataset(lake / "_quarantine/users", format="parquet").to_table().column("line")
    assert b'{"ts": 15418926\xff' in lines.to_pylist()
    for asset in ("time", "songplays"):  # the same lines, from the same parse
        other = read_table(spark, lake / "_quarantine" / asset, schemas.QUARANTINE)
        assert rows(other) == rows(q), asset
    assert sorted(p.name for p in (lake / "_quarantine").iterdir()) == [
        "song_data",
        "songplays",
        "time",
        "users",
    ]

    plays = rows(read_table(spark, lake / "songplays"), "start_time")
    assert [(p["user_id"], p["song_id"], p["artist_id"]) for p in plays] == [
        (2, None, None),
        (1, "SOGOOD", "ARGOOD"),  # |200.4 - 200.0| < 1
        (3, None, None),
    ]
    # 23:30 UTC on the 10th stays on the 10th although the process runs in Los Angeles.
    assert (plays[1]["year"], plays[1]["month"], plays[1]["day"]) == (2018, 11, 10)
    t = rows(read_table(spark, lake / "time/year=2018/month=11/day=10"), "start_time")
    assert [r["hour"] for r in t] == [10, 23]
    users = rows(read_table(spark, lake / "users", schemas.USERS))
    assert [(u["user_id"], u["level"]) for u in users] == [(1, "free"), (2, "paid"), (3, "free")]


def test_two_lines_claiming_one_play_keep_the_smaller_and_quarantine_the_other(
    spark, job, tmp_path
):
    # The cache of a run's events keeps no text for usable lines: the text that decides which
    # line keeps a contested identity, and the quarantined one's bytes, are read again.
    raw = tmp_path / "raw"
    a = event(location="A-town")
    b = event(location="B-town")  # the same ts, user, session and item: one identity
    other = event(userId="2", ts=TS_10_1000, sessionId=2)
    write_lines(raw / "log_data/2018/11/2018-11-10-events.json", [b, other, a, b])
    lake = tmp_path / "lake"
    code, report = job("time", raw, lake, "2018-11-10", "2018-11-11")
    assert code == 0, report
    assert report["quarantine"]["by_reason"] == {"duplicate_event_id": 1}
    assert report["assets"]["time"]["duplicates_dropped"] == 1  # b's second copy
    q = read_table(spark, lake / "_quarantine/time", schemas.QUARANTINE).collect()
    assert [(bytes(r["line"]).decode(), r["reason"]) for r in q] == [
        (max(a, b), "duplicate_event_id")
    ]
    assert report["assets"]["time"]["rows_per_day"] == {"2018-11-10": 2}


def test_empty_days_lose_stale_partitions(spark, job, raw, tmp_path):
    lake = tmp_path / "lake"
    assert job("songs,artists", raw, lake)[0] == 0
    code, _ = job("users,time,songplays", raw, lake, "2018-11-10", "2018-11-12")
    assert code == 0
    stale = [
        lake / "songplays/year=2018/month=11/day=11",
        lake / "time/year=2018/month=11/day=11",
        lake / "_state/user_latest/day=2018-11-11",
        *(lake / "_quarantine" / asset / "day=2018-11-10" for asset in LOG_ASSETS),
    ]
    assert all(p.is_dir() for p in stale)

    # The 11th disappears from the raw data, the 10th loses its bad lines.
    (raw / "log_data/2018/11/2018-11-11-events.json").unlink()
    (raw / "log_data/2018/11/2018-11-10-events.json").write_text(GOOD_1)
    code, report = job("users,time,songplays", raw, lake, "2018-11-10", "2018-11-12")
    assert code == 0, report
    assert report["assets"]["songplays"]["rows_per_day"] == {"2018-11-10": 1, "2018-11-11": 0}
    assert report["quarantine"]["rows"] == 0
    assert not any(p.exists() for p in stale)
    assert read_table(spark, lake / "songplays").count() == 1
    users = rows(read_table(spark, lake / "users", schemas.USERS))
    # The state of the 10th was replaced: user 2 no longer played, user 3 only on the 11th.
    assert [u["user_id"] for u in users] == [1]


def quarantines(lake: Path) -> list[str]:
    return sorted(str(p.relative_to(lake)) for p in (lake / "_quarantine").glob("*/day=*"))


def test_a_user_lost_by_users_fails_both_checks(spark, job, raw, tmp_path, monkeypatch):
    """With users built in the same step, songplays' reference check takes users' answer
    (no job of its own): a user lost by the users state must fail it all the same."""
    lake = tmp_path / "lake"
    assert job("songs,artists", raw, lake)[0] == 0
    latest = runner.users.latest
    monkeypatch.setattr(runner.users, "latest", lambda s: latest(s).where("user_id != 2"))
    code, report = job("users,songplays", raw, lake, "2018-11-10", "2018-11-11")
    assert code == 3 and report["status"] == "check_failed"
    failed = {c["name"]: c for c in report["failed_checks"]}
    assert set(failed) == {"users.level matches latest play", "songplays.user_id in users"}
    orphans = failed["songplays.user_id in users"]
    assert orphans["failing_count"] == 1 and orphans["sample"] == [2]
    assert orphans["message"].startswith("some plays' users are not in users")
    assert failed["users.level matches latest play"]["sample"] == [2]
    assert not (lake / "users").exists() and not (lake / "songplays").exists()


def test_a_users_state_with_another_level_fails_the_level_check_alone(
    spark, job, raw, tmp_path, monkeypatch
):
    """users' level check is measured by the users write itself: a current row that is the
    user's latest play with another level (another writer's state) fails it, names the user,
    and publishes nothing; the user is still in users, so songplays' reference passes."""
    lake = tmp_path / "lake"
    assert job("songs,artists", raw, lake)[0] == 0
    latest = runner.users.latest

    def other_level(state):
        cur = latest(state)
        return cur.withColumn(
            "level", F.when(F.col("user_id") == 2, "free").otherwise(F.col("level"))
        )

    monkeypatch.setattr(runner.users, "latest", other_level)
    code, report = job("users,songplays", raw, lake, "2018-11-10", "2018-11-11")
    assert code == 3 and report["status"] == "check_failed"
    failed = {c["name"]: c for c in report["failed_checks"]}
    assert set(failed) == {"users.level matches latest play"}
    level = failed["users.level matches latest play"]
    assert level["failing_count"] == 1 and level["sample"] == [2]
    assert "re-run users for these days" in level["message"]
    assert report["assets"]["users"]["table_rows"] == 2  # users 1 and 2 played on the 10th
    assert not (lake / "users").exists() and not (lake / "songplays").exists()


def test_songplays_without_users_fails_the_check(spark, job, raw, tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    code, report = job("songplays", raw, lake, "2018-11-10", "2018-11-11")
    assert code == 1 and report["status"] == "failed"
    assert report["error"]["type"] == "JobInputError" and not report["error"]["retryable"]
    assert "materialize songs first" in report["error"]["message"]

    assert job("songs,artists", raw, lake)[0] == 0
    code, report = job("songplays", raw, lake, "2018-11-10", "2018-11-11")
    assert code == 3
    where = report["assets"]["songplays"]["quarantine"]["location"]
    assert where == f"{lake}/_quarantine/songplays"
    assert report["status"] == "check_failed" and report["published"] is False
    (failed,) = report["failed_checks"]
    assert failed["asset"] == "songplays" and failed["name"] == "songplays.user_id in users"
    assert failed["sample"] == [1, 2] and failed["failing_count"] == 2
    assert "users table missing" in failed["message"]
    # Write, audit, publish: nothing of the failed step is visible, not even its quarantine;
    # what it staged is kept where the report says.
    assert quarantines(lake) == [] and not (lake / "songplays").exists()
    staged = Path(report["staging"])
    assert (staged / "_quarantine/songplays/day=2018-11-10").is_dir()
    assert list((staged / "songplays/year=2018/month=11/day=10").glob("*.parquet"))

    code, _ = job("users", raw, lake, "2018-11-10", "2018-11-11")
    assert code == 0
    # A step writes only its own asset's quarantine (parallel steps share no path).
    assert quarantines(lake) == ["_quarantine/users/day=2018-11-10"]
    # A users step for the same days swaps users in while the check reads it: the files it
    # listed are gone when it scans them. The check reads users again instead of failing.
    refs = []

    def racing_references(asset, name, df, col, ref, *rest):
        if not refs:
            for f in (lake / "users").glob("*.parquet"):
                f.rename(f.with_name("swapped-" + f.name))
        refs.append(ref)
        return real_references(asset, name, df, col, ref, *rest)

    real_references = runner.references
    monkeypatch.setattr(runner, "references", racing_references)
    code, report = job("songplays", raw, lake, "2018-11-10", "2018-11-12")
    assert code == 3, report
    assert len(refs) == 2
    (failed,) = report["failed_checks"]
    assert failed["sample"] == [3] and failed["failing_count"] == 1


def user_levels(spark, lake: Path) -> dict[int, str]:
    users = read_table(spark, lake / "users", schemas.USERS)
    return {u["user_id"]: u["level"] for u in rows(users)}


def state_of(report) -> tuple[str, int, int]:
    u = report["assets"]["users"]["details"]
    return u["state_mode"], u["state_days_read"], u["users_recomputed"]


def test_users_state_is_incremental_and_follows_corrected_days(spark, job, raw, tmp_path):
    lake = tmp_path / "lake"
    day09 = raw / "log_data/2018/11/2018-11-09-events.json"
    write_lines(day09, [event(ts=TS_09_1200, level="paid", sessionId=9)])
    # A fresh lake has no user_current: built once from all of the state (here: the run's).
    code, report = job("users", raw, lake, "2018-11-09", "2018-11-11")
    assert code == 0, report
    assert state_of(report) == ("rebuilt", 2, 0)
    assert user_levels(spark, lake) == {1: "free", 2: "paid"}  # user 1: 23:30 on the 10th
    current = read_table(spark, lake / "_state/user_current", schemas.USER_CURRENT)
    assert {(r.user_id, r.day) for r in current.collect()} == {(1, "2018-11-10"), (2, "2018-11-10")}

    # A later day reads only its own state day, and the old user_current.
    code, report = job("users", raw, lake, "2018-11-11", "2018-11-12")
    assert code == 0, report
    assert state_of(report) == ("incremental", 1, 0)
    assert user_levels(spark, lake) == {1: "free", 2: "paid", 3: "free"}
    assert report["assets"]["users"]["rows"] == 3

    # Re-running a day with the same data changes nothing and reads nothing more.
    code, report = job("users", raw, lake, "2018-11-10", "2018-11-11")
    assert code == 0, report
    assert state_of(report) == ("incremental", 1, 0)
    assert user_levels(spark, lake) == {1: "free", 2: "paid", 3: "free"}

    # The 10th is corrected: user 1's play at 23:30 is gone, so their latest play is now the
    # one of the 9th (paid), which neither the old user_current nor the 10th holds.
    (raw / "log_data/2018/11/2018-11-10-events.json").write_text(GOOD_2)
    code, report = job("users", raw, lake, "2018-11-10", "2018-11-11")
    assert code == 0, report
    assert state_of(report) == ("incremental", 3, 1)  # user 1, from all three state days
    assert user_levels(spark, lake) == {1: "paid", 2: "paid", 3: "free"}

    # Without user_current (an older lake) it is rebuilt from every state day, once.
    shutil.rmtree(lake / "_state/user_current")
    code, report = job("users", raw, lake, "2018-11-11", "2018-11-12")
    assert code == 0, report
    assert state_of(report) == ("rebuilt", 3, 0)
    assert user_levels(spark, lake) == {1: "paid", 2: "paid", 3: "free"}
    code, report = job("users", raw, lake, "2018-11-11", "2018-11-12")
    assert state_of(report) == ("incremental", 1, 0)
    # Nothing is left behind by the swaps.
    assert not (lake / "_staging").exists() or not any((lake / "_staging").iterdir())
