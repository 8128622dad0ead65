"""The lake's paths, and write-audit-publish: a run stages everything it writes, its checks run,
and only then is the staged output moved where readers look.

Staged output lives in `<lake>/_staging/<run id>/`, mirroring the lake's layout. Publishing
replaces one directory at a time, each with two renames: the old directory is moved aside,
the staged one into its place, then the old one is deleted. On a local filesystem (and HDFS) a
rename is atomic, so a reader sees a partition (or a whole table) either old or new, and at worst
finds it missing for the instant between the two renames. On S3 a rename is a copy and a delete
per object: a reader listing during the publish of a partition can see it partly replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from pyspark.sql import DataFrame, SparkSession

from sparkify_jobs.checks import Audit
from sparkify_jobs.fs import HadoopFS

QUARANTINE = "_quarantine"
QUARANTINE_SONGS = f"{QUARANTINE}/song_data"
USER_LATEST = "_state/user_latest"
USER_CURRENT = "_state/user_current"
SONG_MATCH = "_state/song_match"
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


def write_parquet(
    df: DataFrame,
    uri: str,
    partition_by: Sequence[str] = (),
    sort_by: Sequence[str] = (),
    audit: Audit | None = None,
    partitions: int | None = None,
) -> None:
    """Writes `df` to an empty location: one file per partition, or one file in all; `audit`
    measures the rows on their way (checks.Audit, grouped by `partition_by`). `partitions`:
    how many partitions the write creates, when the caller knows (else it may be many)."""
    if partition_by:
        df = df.repartition(write_tasks(df.sparkSession, partitions), *partition_by)
    else:
        df = df.coalesce(1)
    if audit is not None:
        df = audit.apply(df)
    writer = df.sortWithinPartitions(*partition_by, *sort_by).write.mode("overwrite")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.parquet(uri)


def write_tasks(spark: SparkSession, partitions: int | None) -> int:
    """Tasks of a partitioned write: as the input's size asks (spark.sql.shuffle.partitions),
    and at least one per core up to the partitions written. A file costs as much to open and
    close as a few thousand rows cost to write: the songs of the 14-day bench (200 rows in 46
    years) took 1.6 s as one task."""
    by_size = int(spark.conf.get("spark.sql.shuffle.partitions"))
    cores = spark.sparkContext.defaultParallelism
    return max(by_size, min(cores, cores if partitions is None else partitions))


@dataclass
class _StagedDays:
    rel: str
    days: list[date]
    day_dir: Callable[[date], str]


@dataclass
class Staging:
    """One run's staged output and how to publish it."""

    fs: HadoopFS
    lake: str  # the lake's Hadoop URI
    run_id: str
    _tables: list[str] = field(default_factory=list)
    _days: list[_StagedDays] = field(default_factory=list)
    # Output staged outside the lake (the warehouse's staging tables): (publish, discard).
    _external: list[tuple[Callable[[], set[str]], Callable[[], None], Callable[[], None]]] = field(
        default_factory=list
    )

    @property
    def root(self) -> str:
        return f"{self.lake}/{STAGING}/{self.run_id}"

    def uri(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def is_staged(self, rel: str) -> bool:
        return rel in self._tables or any(d.rel == rel for d in self._days)

    def table(
        self,
        df: DataFrame,
        rel: str,
        partition_by: Sequence[str] = (),
        sort_by: Sequence[str] = (),
        audit: Audit | None = None,
    ) -> str:
        """Stages a new version of a whole table; publishing replaces the table as a whole."""
        uri = self.uri(rel)
        write_parquet(df, uri, partition_by, sort_by, audit)
        self._tables.append(rel)
        return uri

    def empty_table(self, rel: str) -> None:
        """Publishing removes the table (e.g. a quarantine that has nothing left in it)."""
        self._tables.append(rel)

    def days(
        self,
        df: DataFrame,
        rel: str,
        partition_by: Sequence[str],
        sort_by: Sequence[str],
        days: Iterable[date],
        days_with_rows: Iterable[date],
        day_dir: Callable[[date], str],
        audit: Audit | None = None,
    ) -> str:
        """Stages the partitions of `days`; publishing replaces exactly those partitions, and
        removes the ones of days that now have no rows."""
        uri = self.uri(rel)
        if with_rows := len(set(days_with_rows)):
            write_parquet(df, uri, partition_by, sort_by, audit, partitions=with_rows)
        self._days.append(_StagedDays(rel, list(days), day_dir))
        return uri

    def external(
        self,
        publish: Callable[[], None],
        discard: Callable[[], None],
        owners: Callable[[], set[str]],
    ) -> None:
        """Output staged elsewhere (warehouse.py): published after the lake's own paths, all of
        it or none — only when every asset in `owners()` may be published — and discarded with
        the staging."""
        self._external.append((owners, publish, discard))

    def groups(self) -> list[set[str]]:
        """Assets whose output is published together or not at all (one external each)."""
        return [owners() for owners, _, _ in self._external]

    def publish(
        self,
        paths: Callable[[str], bool] = lambda _: True,
        assets: Callable[[str], bool] = lambda _: True,
    ) -> None:
        """Moves the staged paths `paths` accepts into place, then the externals whose assets
        `assets` all accepts (all of them by default)."""
        aside = f"{self.root}/_replaced"
        for rel in self._tables:
            if paths(rel):
                self._swap(self.uri(rel), f"{self.lake}/{rel}", f"{aside}/{rel}")
        for staged in self._days:
            if not paths(staged.rel):
                continue
            for day in staged.days:
                part = f"{staged.rel}/{staged.day_dir(day)}"
                self._swap(self.uri(part), f"{self.lake}/{part}", f"{aside}/{part}")
        for owners, publish, _ in self._external:
            if all(assets(a) for a in owners()):
                publish()

    def _swap(self, new: str, target: str, aside: str) -> None:
        fs = self.fs
        has_new = fs.exists(new)
        if fs.exists(target) and not fs.rename(target, aside):
            raise OSError(f"could not move {target} aside to {aside}")
        if has_new and not fs.rename(new, target):
            if fs.exists(aside) and not fs.exists(target):
                fs.rename(aside, target)
            raise OSError(f"could not publish {new} to {target}")
        fs.delete(aside)

    def discard(self) -> None:
        for _, _, discard in self._external:
            try:
                discard()
            except Exception as e:  # the lake's staging still goes
                print(f"sparkify: discarding staged output failed: {e}", flush=True)
        self.fs.delete(self.root)
