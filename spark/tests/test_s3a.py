"""Write, audit, publish on S3 through S3A (moto's S3 server), where a rename is a copy of every
object and a delete, not an atomic move: the staged directories are published into place,
replaced partitions lose their old files, days without rows lose their partition, untouched days
keep their objects, and nothing of the staging is left once it is discarded."""

from __future__ import annotations

from datetime import date

import pytest
from s3a import s3a_jars

from sparkify_jobs import lake
from sparkify_jobs.fs import HadoopFS

BUCKET = "sparkify-wap"
D1, D2, D3 = date(2018, 11, 1), date(2018, 11, 2), date(2018, 11, 3)


@pytest.fixture(scope="module")
def s3(spark):
    if s3a_jars() is None:
        pytest.skip("the S3A connector is not cached: run scripts/setup (scripts/setup-s3a)")
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="moto",
        aws_secret_access_key="moto",
    )
    client.create_bucket(Bucket=BUCKET)
    # The settings the local EMR gives its steps (dev/emr-local/s3a.ts), for this bucket only.
    # The JVM's environment was fixed when it started, so moto's dummy keys reach the default
    # chain as JVM system properties, one of its sources.
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    jvm = spark.sparkContext._jvm
    prefix = f"fs.s3a.bucket.{BUCKET}."
    settings = {
        "endpoint": endpoint,
        "path.style.access": "true",
        "aws.credentials.provider": "com.amazonaws.auth.DefaultAWSCredentialsProviderChain",
    }
    for key, value in settings.items():
        conf.set(prefix + key, value)
    jvm.java.lang.System.setProperty("aws.accessKeyId", "moto")
    jvm.java.lang.System.setProperty("aws.secretKey", "moto")
    try:
        yield client
    finally:
        for key in settings:
            conf.unset(prefix + key)
        jvm.java.lang.System.clearProperty("aws.accessKeyId")
        jvm.java.lang.System.clearProperty("aws.secretKey")
        server.stop()


def keys(client, prefix: str) -> dict[str, str]:
    """Every object under `prefix`: key → ETag."""
    out: dict[str, str] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = obj["ETag"]
    return out


def data_files(client, prefix: str) -> dict[str, str]:
    return {k: v for k, v in keys(client, prefix).items() if k.endswith(".parquet")}


def plays(spark, rows: list[tuple[str, date]]):
    return spark.createDataFrame(
        [(pid, d.year, d.month, d.day) for pid, d in rows],
        "id string, year int, month int, day int",
    )


def stage(spark, fs, root: str, run_id: str, artists: list[str], days, rows):
    staging = lake.Staging(fs, root, run_id)
    staging.table(
        spark.createDataFrame([(a,) for a in artists], "artist_id string"),
        "artists",
        sort_by=("artist_id",),
    )
    staging.days(
        plays(spark, rows),
        "songplays",
        partition_by=("year", "month", "day"),
        sort_by=("id",),
        days=days,
        days_with_rows={d for _, d in rows},
        day_dir=lake.ymd_dir,
    )
    return staging


def ids(spark, uri: str) -> list[str]:
    return sorted(r[0] for r in spark.read.parquet(uri).select("id").collect())


def test_publish_and_discard_on_s3a(spark, s3):
    fs = HadoopFS(spark)
    root = f"s3a://{BUCKET}/lake"

    # A first run: every target is new.
    first = stage(
        spark, fs, root, "run1", ["AR1", "AR2"], [D1, D2, D3], [("a", D1), ("b", D2), ("c", D3)]
    )
    first.publish()
    first.discard()
    assert sorted(r[0] for r in spark.read.parquet(f"{root}/artists").collect()) == ["AR1", "AR2"]
    assert ids(spark, f"{root}/songplays") == ["a", "b", "c"]
    assert keys(s3, "lake/_staging/run1/") == {}
    day3_before = data_files(s3, "lake/songplays/year=2018/month=11/day=3/")
    assert len(day3_before) == 1

    # A second run over D1 and D2: the table and D1 are replaced, D2 now has no rows, D3 is not
    # the run's and keeps its very objects.
    old_d1 = data_files(s3, "lake/songplays/year=2018/month=11/day=1/")
    second = stage(spark, fs, root, "run2", ["AR3"], [D1, D2], [("d", D1), ("e", D1)])
    second.publish()
    assert sorted(r[0] for r in spark.read.parquet(f"{root}/artists").collect()) == ["AR3"]
    assert ids(spark, f"{root}/songplays/year=2018/month=11/day=1") == ["d", "e"]
    new_d1 = data_files(s3, "lake/songplays/year=2018/month=11/day=1/")
    assert len(new_d1) == 1 and not set(new_d1) & set(old_d1)
    assert data_files(s3, "lake/songplays/year=2018/month=11/day=2/") == {}
    assert data_files(s3, "lake/songplays/year=2018/month=11/day=3/") == day3_before
    assert ids(spark, f"{root}/songplays") == ["c", "d", "e"]
    # What was moved aside is gone; the staged copies were moved (copied, then deleted).
    assert data_files(s3, "lake/_staging/run2/") == {}
    second.discard()
    assert keys(s3, "lake/_staging/run2/") == {}
    # Only the published tables hold data files.
    assert {k.split("/")[1] for k in data_files(s3, "lake/")} == {"artists", "songplays"}
