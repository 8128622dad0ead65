"""SparkSession creation and the settings every run depends on."""

from __future__ import annotations

import os

from pyspark.sql import SparkSession

SHUFFLE_PARTITIONS_ENV = "SPARKIFY_SHUFFLE_PARTITIONS"


def configure(spark: SparkSession) -> SparkSession:
    """Settings that decide correctness, applied to any session (ours or a test's)."""
    # Partition keys, hour/day/week and the UTC-day checks all use the session time zone.
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    # INT96 (Spark's default) is deprecated and read back as a naive timestamp by pyarrow and
    # DuckDB; TIMESTAMP_MICROS is marked as UTC-adjusted, which is what start_time is.
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    spark.conf.set("spark.sql.adaptive.enabled", "true")
    conf = spark.sparkContext.getConf()
    if not conf.contains("spark.sql.shuffle.partitions"):
        # Spark's 200 is far too many for a day of events; an explicit --conf still wins.
        default = max(4, 2 * spark.sparkContext.defaultParallelism)
        spark.conf.set(
            "spark.sql.shuffle.partitions", os.environ.get(SHUFFLE_PARTITIONS_ENV, str(default))
        )
    return spark


def create() -> SparkSession:
    spark = (
        SparkSession.builder.appName("sparkify-lake")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    return configure(spark)
