"""Writing the lake's tables: whole-table rebuilds and replacement of a run's day partitions."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date

from pyspark.sql import DataFrame

from sparkify_jobs.fs import HadoopFS

QUARANTINE = "_quarantine"
QUARANTINE_SONGS = f"{QUARANTINE}/song_data"
USER_LATEST = "_state/user_latest"
USER_CURRENT = "_state/user_current"
# Per-run scratch space: `_staging/<run id>/...`, deleted when the run ends.
STAGING = "_staging"


def quarantine_logs(asset: str) -> str:
    """Each log asset owns its own quarantine of bad log lines, so steps that run in parallel
    for the same days never write the same path."""
    return f"{QUARANTINE}/{asset}"


def ymd_dir(day: date) -> str:
    """Partition directory of the year/month/day tables (integers, as Spark writes them)."""
    return f"year={day.year}/month={day.month}/day={day.day}"


def iso_day_dir(day: date) -> str:
    return f"day={day:%Y-%m-%d}"


def write_whole(
    df: DataFrame,
    uri: str,
    partition_by: Sequence[str] = (),
    sort_by: Sequence[str] = (),
) -> None:
    """Replaces the whole table. Partitioned: exactly one file per partition; else one file."""
    # The unpartitioned tables (artists, users) are small: one file is what readers want.
    df = df.repartition(*partition_by) if partition_by else df.coalesce(1)
    writer = (
        df.sortWithinPartitions(*partition_by, *sort_by)
        .write.mode("overwrite")
        # Static: partitions that no longer exist must disappear too.
        .option("partitionOverwriteMode", "static")
    )
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.parquet(uri)


def replace_whole(
    fs: HadoopFS,
    df: DataFrame,
    uri: str,
    staging_uri: str,
    sort_by: Sequence[str] = (),
) -> None:
    """Replaces an unpartitioned table without ever overwriting it in place: writes `df` to
    `staging_uri`, then swaps it in with two renames (the old table is moved aside, then
    deleted). `df` may therefore be computed from the table being replaced. If the run dies
    between the renames the table is missing, never half-written."""
    write_whole(df, staging_uri, sort_by=sort_by)
    old = f"{staging_uri}.replaced"
    if fs.exists(uri) and not fs.rename(uri, old):
        raise OSError(f"could not move {uri} aside to {old}")
    if not fs.rename(staging_uri, uri):
        if fs.exists(old) and not fs.exists(uri):
            fs.rename(old, uri)
        raise OSError(f"could not rename {staging_uri} to {uri}")
    fs.delete(old)


def write_days(
    fs: HadoopFS,
    df: DataFrame,
    uri: str,
    partition_by: Sequence[str],
    sort_by: Sequence[str],
    days: Iterable[date],
    days_with_rows: Iterable[date],
    day_dir: Callable[[date], str],
) -> list[str]:
    """Replaces exactly the partitions of `days`: dynamic overwrite for the days that have rows
    (one file each), and an explicit delete for the days that now have none, which dynamic
    overwrite would otherwise leave stale. Returns the deleted partition URIs."""
    keep = set(days_with_rows)
    if keep:
        (
            df.repartition(*partition_by)
            .sortWithinPartitions(*partition_by, *sort_by)
            .write.mode("overwrite")
            .option("partitionOverwriteMode", "dynamic")
            .partitionBy(*partition_by)
            .parquet(uri)
        )
    deleted = []
    for day in days:
        if day not in keep:
            part = f"{uri}/{day_dir(day)}"
            if fs.delete(part):
                deleted.append(part)
    return deleted
