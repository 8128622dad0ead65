"""The analytics on the real sample (../shared/data/sparkify-sample): the lake and the warehouse
are built by the jobs, every report query (warehouse/reports/*.sql) is run as it is by psql, and
its answer is compared with figures computed here from the raw JSON alone, not through the
pipeline."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import REPO, sample_dir
from test_warehouse import STEPS, Warehouse

from sparkify_jobs import cli

START, END = "2018-11-01", "2018-12-01"
REPORTS = REPO / "warehouse" / "reports"


def raw_figures(raw: Path) -> dict:
    """Everything the reports answer, from the JSON files with plain Python."""
    songs = {}
    for f in (raw / "song_data").rglob("*.json"):
        s = json.loads(f.read_text())
        songs[s["song_id"]] = s
    seen, plays = set(), []
    for f in sorted((raw / "log_data").rglob("*-events.json")):
        for line in f.read_text().splitlines():
            if not line.strip() or line in seen:
                continue
            seen.add(line)
            e = json.loads(line)
            if e["page"] == "NextSong" and e["userId"] != "":
                plays.append(e)

    def match(e):
        hits = [
            s
            for s in songs.values()
            if s["title"] == e["song"]
            and s["artist_name"] == e["artist"]
            and abs(float(e["length"]) - float(s["duration"])) < 1
        ]
        hits.sort(key=lambda s: (abs(float(e["length"]) - float(s["duration"])), s["song_id"]))
        return hits[0] if hits else None

    matched = [(e, m) for e in plays if (m := match(e))]
    when = [datetime.fromtimestamp(e["ts"] / 1000, tz=timezone.utc) for e in plays]

    def top(counter, key=lambda k: k):
        return sorted(counter.items(), key=lambda kv: (-kv[1], key(kv[0])))[:10]

    latest = {}
    for e in plays:
        uid, k = int(e["userId"]), (e["ts"], int(e["sessionId"]), int(e["itemInSession"]))
        if uid not in latest or k > latest[uid][0]:
            latest[uid] = (k, e)
    user_plays = Counter(int(e["userId"]) for e in plays)
    level_plays = Counter(e["level"] for e in plays)
    level_users = Counter(e["level"] for _, e in latest.values())
    return {
        "plays": len(plays),
        "in_catalogue": len(matched),
        "top_songs": top(Counter(m["song_id"] for _, m in matched)),
        "song_titles": {m["song_id"]: m["title"] for _, m in matched},
        "top_artists": top(Counter(m["artist_id"] for _, m in matched)),
        "by_hour": [Counter(t.hour for t in when).get(h, 0) for h in range(24)],
        "by_weekday": [Counter(t.isoweekday() for t in when).get(d, 0) for d in range(1, 8)],
        "level_plays": dict(level_plays),
        "level_users": dict(level_users),
        "top_users": [
            (
                uid,
                n,
                latest[uid][1]["firstName"],
                latest[uid][1]["lastName"],
                latest[uid][1]["level"],
            )
            for uid, n in top(user_plays)
        ],
        "top_locations": top(Counter(e["location"] for e in plays if e.get("location"))),
    }


@pytest.fixture(scope="module")
def loaded(spark, warehouse_pg, tmp_path_factory):
    raw = sample_dir()
    if shutil.which("psql") is None:
        pytest.skip("psql not on PATH: the report queries are checked as psql runs them")
    root = tmp_path_factory.mktemp("sample-warehouse")
    lake = root / "lake"
    code = cli.main(
        [
            "--assets",
            "songs,artists,users,time,songplays",
            "--raw",
            str(raw),
            "--lake",
            str(lake),
            "--report",
            str(root / "lake.json"),
            "--start",
            START,
            "--end",
            END,
        ],
        spark=spark,
    )
    assert code == 0
    mp = pytest.MonkeyPatch()
    mp.setenv("PGPASSWORD", warehouse_pg.password)
    try:
        wh = Warehouse(spark, warehouse_pg, root, lake, raw)
        for assets, daily in STEPS:
            code, rep = wh.job(assets, START if daily else None, END)
            assert code == 0, rep
    finally:
        mp.undo()
    return wh, raw_figures(raw)


def report(wh: Warehouse, name: str, start=START, end=END) -> list[list[str]]:
    """The query file as it is, through psql, with the range as psql variables."""
    out = wh.server.psql(
        wh.db,
        *("-A", "-t", "-F", "\t", "-v", f"from={start}", "-v", f"to={end}"),
        *("-f", str(REPORTS / f"{name}.sql")),
    )
    return [line.split("\t") for line in out.splitlines() if line]


def test_the_sample_has_its_true_sizes(loaded):
    wh, fig = loaded
    assert fig["plays"] == 6820 and fig["in_catalogue"] == 1
    assert wh.scalar("SELECT count(*) FROM songplays") == 6820
    assert wh.scalar("SELECT count(*) FROM users") == 96
    assert wh.scalar("SELECT count(*) FROM time") == 6813


def test_top_songs_and_artists(loaded):
    wh, fig = loaded
    songs = report(wh, "top_songs")
    assert [(r[0], int(r[3])) for r in songs] == fig["top_songs"]
    assert [r[1] for r in songs] == [fig["song_titles"][s] for s, _ in fig["top_songs"]]
    assert [(r[0], int(r[2])) for r in report(wh, "top_artists")] == fig["top_artists"]


def test_plays_by_hour_and_weekday(loaded):
    wh, fig = loaded
    assert [int(r[1]) for r in report(wh, "plays_by_hour")] == fig["by_hour"]
    assert [r[0] for r in report(wh, "plays_by_hour")] == [str(h) for h in range(24)]
    weekday = report(wh, "plays_by_weekday")
    assert [int(r[2]) for r in weekday] == fig["by_weekday"]
    assert weekday[0][1] == "Monday"


def test_free_and_paid_shares_of_plays_and_users(loaded):
    wh, fig = loaded
    rows = {r[0]: r for r in report(wh, "level_share")}
    assert set(rows) == {"free", "paid"}
    total_plays, total_users = sum(fig["level_plays"].values()), sum(fig["level_users"].values())
    assert total_users == 96
    for level, r in rows.items():
        assert int(r[1]) == fig["level_plays"][level]
        assert float(r[2]) == round(fig["level_plays"][level] / total_plays, 4)
        assert int(r[3]) == fig["level_users"][level]
        assert float(r[4]) == round(fig["level_users"][level] / total_users, 4)


def test_top_users_and_locations(loaded):
    wh, fig = loaded
    users = [(int(r[0]), int(r[4]), r[1], r[2], r[3]) for r in report(wh, "top_users")]
    assert users == fig["top_users"]
    assert [(r[0], int(r[1])) for r in report(wh, "top_locations")] == fig["top_locations"]


def test_share_of_plays_in_the_catalogue(loaded):
    wh, fig = loaded
    [[plays, matched, share]] = report(wh, "catalogue_share")
    assert (int(plays), int(matched)) == (fig["plays"], fig["in_catalogue"])
    assert float(share) == round(fig["in_catalogue"] / fig["plays"], 4)


def test_a_date_range_narrows_every_answer(loaded):
    wh, _ = loaded
    [[plays, _, _]] = report(wh, "catalogue_share", "2018-11-05", "2018-11-06")
    expected = sum(
        1
        for line in (sample_dir() / "log_data/2018/11/2018-11-05-events.json")
        .read_text()
        .splitlines()
        if line.strip() and json.loads(line)["page"] == "NextSong"
    )
    assert int(plays) == expected
    assert (
        sum(int(r[1]) for r in report(wh, "plays_by_hour", "2018-11-05", "2018-11-06")) == expected
    )
