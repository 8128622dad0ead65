"""The synthetic data set (generator/, TypeScript) through the whole job: every table's size must
equal what the generator counted while writing it (`_generator.json`)."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest
from conftest import REPO, Job, read_table, rows
from pyspark.sql import functions as F

from sparkify_jobs import schemas

# Starts the day before a month ends, so month partitions and log_data/YYYY/MM folders both turn.
START, DAYS = "2018-11-30", 3
END = (date.fromisoformat(START) + timedelta(days=DAYS)).isoformat()
ASSETS = "songs,artists,users,time,songplays"


def generate(out: Path) -> dict:
    npx = shutil.which("npx")
    assert npx, "npx not on PATH: the generator runs on Node (npm ci at the repo root)"
    args = ["--out", str(out), "--days", str(DAYS), "--users", "40", "--songs", "60"]
    args += ["--seed", "2018", "--start", START, "--events-per-day", "1500"]
    proc = subprocess.run(
        [npx, "tsx", "dev/generator/main.ts", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads((out / "_generator.json").read_text())


@pytest.fixture(scope="module")
def built(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("generated")
    raw, lake = root / "raw", root / "lake"
    expected = generate(raw)
    code, report = Job(spark, root)(ASSETS, raw, lake, START, END)
    return expected, lake, code, report


def by_day(df) -> dict[str, int]:
    """Rows per partition day of a table partitioned by year/month/day."""
    counts = df.groupBy("year", "month", "day").count().collect()
    return {f"{r['year']:04d}-{r['month']:02d}-{r['day']:02d}": r["count"] for r in counts}


def test_generated_data_is_what_it_claims(built):
    expected, _, _, _ = built
    # Guards against a degenerate data set passing the count checks trivially.
    assert expected["days"] == ["2018-11-30", "2018-12-01", "2018-12-02"]
    assert expected["songplays"] > 3000
    assert 0 < expected["songplays_with_song_match"] < expected["songplays"]
    assert expected["artists"] < expected["songs"] == 60
    assert expected["artists_with_variant_rows"] > 0
    assert expected["time_rows"] <= expected["songplays"]
    assert expected["users_with_both_levels"] > 0


def test_job_succeeds_on_clean_data(built):
    _, _, code, report = built
    assert code == 0, report
    assert report["status"] == "succeeded"
    assert report["failed_checks"] == []
    assert report["quarantine"]["rows"] == 0


def test_dimension_sizes(spark, built):
    expected, lake, _, report = built
    for table, key in (("songs", "songs"), ("artists", "artists"), ("users", "users")):
        assert read_table(spark, lake / table).count() == expected[key], table
        assert report["assets"][table]["rows"] == expected[key], table
    artists = read_table(spark, lake / "artists")
    assert artists.select("artist_id").distinct().count() == expected["artists"]


def test_songplays_total_per_day_and_matches(spark, built):
    expected, lake, _, report = built
    songplays = read_table(spark, lake / "songplays")
    assert songplays.count() == expected["songplays"]
    assert songplays.select("songplay_id").distinct().count() == expected["songplays"]
    assert by_day(songplays) == expected["songplays_per_day"]
    assert report["assets"]["songplays"]["rows_per_day"] == expected["songplays_per_day"]
    matched = songplays.where(F.col("song_id").isNotNull())
    assert matched.count() == expected["songplays_with_song_match"]
    assert matched.where(F.col("artist_id").isNull()).count() == 0


def test_time_rows(spark, built):
    expected, lake, _, report = built
    time_table = read_table(spark, lake / "time")
    assert time_table.count() == expected["time_rows"]
    assert by_day(time_table) == expected["time_rows_per_day"]
    assert report["assets"]["time"]["rows"] == expected["time_rows"]


def test_users_latest_level(spark, built):
    expected, lake, _, _ = built
    got = {r["user_id"]: r["level"] for r in rows(read_table(spark, lake / "users", schemas.USERS))}
    assert got == {int(u): level for u, level in expected["users_latest_level"].items()}
    assert sum(level == "paid" for level in got.values()) == expected["paid_users"]


def test_user_latest_state_per_day(spark, built):
    expected, lake, _, _ = built
    state = read_table(spark, lake / "_state/user_latest", schemas.USER_LATEST)
    counts = {r["day"]: r["count"] for r in state.groupBy("day").count().collect()}
    assert counts == expected["users_per_day"]


def test_every_table_has_the_declared_types_for_any_parquet_reader(built):
    """Read with pyarrow, not Spark: each column of each table has the type the asset
    declaration states, and timestamps are microseconds adjusted to UTC (not INT96)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    from sparkify_jobs import graph

    arrow = {
        "string": pa.string(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "double": pa.float64(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }
    _, lake, code, _ = built
    assert code == 0
    lake_tables = {k: a for k, a in graph.assets().items() if not a.warehouse}
    assert set(lake_tables) == {"songs", "artists", "users", "time", "songplays"}
    for name, asset in lake_tables.items():
        table = ds.dataset(lake / name, format="parquet", partitioning="hive").to_table()
        in_files = {n: t for n, t in asset.columns if n not in asset.partition_by}
        got = {f.name: f.type for f in table.schema if f.name in in_files}
        assert got == {n: arrow[t] for n, t in in_files.items()}, name
        assert table.num_rows > 0, name
