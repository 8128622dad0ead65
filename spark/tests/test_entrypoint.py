"""run.py as the orchestrator calls it: argument errors before Spark, and one real spark-submit
with the package shipped as a zip through --py-files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from conftest import RUN_PY, SPARK_DIR, write_lines

from sparkify_jobs.args import ArgumentError, parse_args, to_hadoop_uri

BASE = ["--raw", "/r", "--lake", "/l", "--report", "/l/r.json"]


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["--assets", "songs,albums", *BASE], "--assets"),
        (["--assets", "", *BASE], "--assets"),
        (["--assets", "time", "--start", "2018-11-1", "--end", "2018-12-01", *BASE], "--start"),
        (["--assets", "time", "--start", "2018-11-01", "--end", "2018-13-01", *BASE], "--end"),
        (["--assets", "time", "--start", "2018-11-02", "--end", "2018-11-01", *BASE], "--end"),
        (["--assets", "time", "--start", "2018-11-02", "--end", "2018-11-02", *BASE], "--end"),
        (["--assets", "users", "--end", "2018-11-02", *BASE], "--start"),
        (["--assets", "songplays", "--start", "2018-11-02", *BASE], "--end"),
        (["--assets", "songs", "--raw", "gs://b/raw", "--lake", "/l", "--report", "/r"], "--raw"),
        (["--assets", "songs", "--raw", "/r", "--lake", "/l"], "--report"),
    ],
)
def test_invalid_arguments_are_named(argv, names):
    with pytest.raises(ArgumentError, match=names):
        parse_args(argv)


def test_valid_arguments():
    uris = ["--raw", "s3://b/raw/", "--lake", "rel/lake", "--report", "file:///tmp/r.json"]
    dates = ["--start", "2018-11-30", "--end", "2018-12-02"]
    a = parse_args(["--assets", "songplays, users,songs", *uris, *dates])
    assert a.assets == ("songs", "users", "songplays")  # canonical order: users first
    assert [d.isoformat() for d in a.days] == ["2018-11-30", "2018-12-01"]
    assert a.raw_uri == "s3a://b/raw"
    assert a.lake_uri == Path(os.path.abspath("rel/lake")).as_uri()
    assert a.report_uri == "file:///tmp/r.json"
    assert to_hadoop_uri("s3a://b/") == "s3a://b"
    songs_only = parse_args(["--assets", "songs,artists", *BASE])
    assert songs_only.days == [] and not songs_only.reads("log_data")


@pytest.mark.parametrize(
    ("assets", "dates", "names"),
    [
        ("songs,nope", [], "--assets"),
        ("time", ["--start", "2018-02-30", "--end", "2018-03-01"], "--start"),
        ("time", ["--start", "2018-11-05", "--end", "2018-11-01"], "--end"),
    ],
)
def test_run_py_exits_2_before_spark(tmp_path, assets, dates, names):
    report = tmp_path / "report.json"
    argv = ["--assets", assets, "--raw", str(tmp_path), "--lake", str(tmp_path / "lake")]
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(RUN_PY), *argv, *dates, "--report", str(report)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert names in proc.stderr
    assert "SparkContext" not in proc.stderr and time.monotonic() - t0 < 20
    assert not report.exists() and not (tmp_path / "lake").exists()


def test_spark_submit_with_zipped_package(tmp_path):
    spark_submit = Path(sys.executable).parent / "spark-submit"
    if not spark_submit.exists():
        pytest.skip(f"spark-submit not found beside {sys.executable}")
    bundle = tmp_path / "code"
    bundle.mkdir()
    # run.py alone in its directory: the package can only come from the zip.
    shutil.copy(RUN_PY, bundle / "run.py")
    with zipfile.ZipFile(bundle / "sparkify_jobs.zip", "w") as z:
        for f in sorted((SPARK_DIR / "sparkify_jobs").glob("*.py")):
            z.write(f, f"sparkify_jobs/{f.name}")
        # As the code bundle ships it: the asset declaration inside the package.
        z.write(SPARK_DIR.parent / "assets/assets.json", "sparkify_jobs/assets.json")
    raw = tmp_path / "raw"
    for i, (sid, aid) in enumerate([("S1", "A1"), ("S2", "A1"), ("S3", "A2")]):
        song = {"song_id": sid, "artist_id": aid, "title": f"T{i}", "year": 2000 + i}
        write_lines(raw / f"song_data/A/B/C/TR{i}.json", [json.dumps(song)])
    lake, report = tmp_path / "lake", tmp_path / "reports/songs.json"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    proc = subprocess.run(
        [
            str(spark_submit),
            "--master",
            "local[2]",
            "--conf",
            "spark.sql.shuffle.partitions=4",
            "--conf",
            "spark.ui.enabled=false",
            # Same as the in-process session: a few tiny jobs, where JIT and codegen dominate.
            "--conf",
            "spark.sql.codegen.wholeStage=false",
            "--driver-java-options",
            "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
            "--py-files",
            str(bundle / "sparkify_jobs.zip"),
            str(bundle / "run.py"),
            "--assets",
            "songs,artists",
            "--raw",
            f"file://{raw}",
            "--lake",
            str(lake),
            "--report",
            f"file://{report}",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(report.read_text())
    assert doc["status"] == "succeeded" and doc["args"]["start"] is None
    assert doc["assets"]["songs"]["rows"] == 3 and doc["assets"]["artists"]["rows"] == 2
    assert doc["assets"]["songs"]["input_files"] == 3
    assert sorted(p.name for p in (lake / "songs").iterdir() if p.is_dir()) == [
        "year=2000",
        "year=2001",
        "year=2002",
    ]
    assert not list(report.parent.glob(".*.crc"))
    # A local lake holds the table files alone: no Hadoop checksum file beside each.
    assert list(lake.rglob("*.parquet")) and not list(lake.rglob("*.crc"))
