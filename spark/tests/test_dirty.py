"""Hand-made raw data: bad lines are quarantined with a reason, good lines kept; empty days
lose their stale partitions; a failing check exits 3 with the offending keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import read_table, rows, write_lines

from sparkify_jobs import schemas

TS_10_2330 = 1541892600000  # 2018-11-10T23:30:00Z
TS_10_1000 = 1541844000000  # 2018-11-10T10:00:00Z
TS_11_1200 = 1541937600000  # 2018-11-11T12:00:00Z


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
}
BY_REASON = {
    "malformed_json": 1,
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
    assert report["quarantine"] == {
        "rows": 7,
        "by_reason": BY_REASON,
        "location": f"{lake}/_quarantine/log_data",
    }
    sp = report["assets"]["songplays"]
    assert sp["quarantined"] == BY_REASON
    assert sp["duplicates_dropped"] == 1
    assert sp["input_files"] == 2  # the 28 missing days are just empty
    assert sp["rows_per_day"]["2018-11-10"] == 2 and sp["rows_per_day"]["2018-11-11"] == 1
    assert sp["rows"] == 3

    assert report["assets"]["songs"]["quarantined"] == {"malformed_json": 1}
    assert report["assets"]["songs"]["input_files"] == 2 and report["assets"]["songs"]["rows"] == 1
    (bad_song,) = read_table(spark, lake / "_quarantine/song_data").collect()
    assert bad_song.source_file.endswith("TRBAD.json") and bad_song.reason == "malformed_json"

    q = read_table(spark, lake / "_quarantine/log_data", schemas.QUARANTINE)
    got = {r["line"]: (r["reason"], r["day"]) for r in rows(q)}
    assert got == {line: (reason, "2018-11-10") for line, reason in BAD.items()}
    assert all(r.source_file.endswith("2018-11-10-events.json") for r in q.collect())

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


def test_empty_days_lose_stale_partitions(spark, job, raw, tmp_path):
    lake = tmp_path / "lake"
    code, _ = job("users,time,songplays", raw, lake, "2018-11-10", "2018-11-12")
    assert code == 0
    stale = [
        lake / "songplays/year=2018/month=11/day=11",
        lake / "time/year=2018/month=11/day=11",
        lake / "_state/user_latest/day=2018-11-11",
        lake / "_quarantine/log_data/day=2018-11-10",
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


def test_songplays_without_users_fails_the_check(spark, job, raw, tmp_path):
    lake = tmp_path / "lake"
    code, report = job("songplays", raw, lake, "2018-11-10", "2018-11-11")
    assert code == 3
    assert report["status"] == "check_failed"
    (failed,) = report["failed_checks"]
    assert failed["asset"] == "songplays" and failed["name"] == "songplays.user_id in users"
    assert failed["sample"] == [1, 2] and failed["failing_count"] == 2
    assert "users table missing" in failed["message"]

    code, _ = job("users", raw, lake, "2018-11-10", "2018-11-11")
    assert code == 0
    code, report = job("songplays", raw, lake, "2018-11-10", "2018-11-12")
    assert code == 3
    (failed,) = report["failed_checks"]
    assert failed["sample"] == [3] and failed["failing_count"] == 1
