"""Prints, as JSON, each table's row count and a digest of its sorted rows, read back with Spark.

Tests use it to compare two lakes (an interrupted run against an uninterrupted one, a lake on S3
against one in a folder) and to check counts against what the generator says it wrote.

    lake_digest.py LAKE [--conf KEY=VALUE ...]

`--conf` settings go to the session, e.g. the S3A connector on the driver's classpath and its
endpoint for an `s3a://` lake, as the local EMR gives its steps (dev/emr-local/s3a.ts); AWS
credentials come from the environment (the default chain), never from an argument.
"""

import argparse
import hashlib
import json

from pyspark.sql import SparkSession

TABLES = ["songs", "artists", "users", "time", "songplays"]


def main(lake: str, conf: list[str]) -> None:
    builder = SparkSession.builder
    for setting in conf:
        key, _, value = setting.partition("=")
        builder = builder.config(key, value)
    spark = (
        builder.master("local[2]")
        .appName("lake-digest")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    out = {}
    for table in TABLES:
        df = spark.read.parquet(f"{lake}/{table}")
        cols = sorted(df.columns)
        lines = sorted(
            json.dumps(r.asDict(), default=str, sort_keys=True) for r in df.select(*cols).collect()
        )
        out[table] = {
            "rows": len(lines),
            "sha256": hashlib.sha256("\n".join(lines).encode()).hexdigest(),
        }
        if table == "songplays":
            out[table]["with_song_match"] = df.where("song_id IS NOT NULL").count()
        if table == "users":
            out[table]["levels"] = {str(r.user_id): r.level for r in df.collect()}
    spark.stop()
    print(json.dumps(out))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("lake")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    main(args.lake, args.conf)
