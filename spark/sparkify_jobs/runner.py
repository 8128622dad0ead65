"""One run: read each input once, materialize the asked assets in order, check, report."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sparkify_jobs import (
    artists,
    lake,
    logdata,
    schemas,
    songdata,
    songplays,
    songs,
    sources,
    time_table,
    users,
)
from sparkify_jobs.args import Args
from sparkify_jobs.checks import Check, key_checks, references
from sparkify_jobs.fs import HadoopFS
from sparkify_jobs.report import AssetReport


def _total(result: tuple[dict[tuple, int], list[Check]]) -> tuple[int, list[Check]]:
    counts, checks = result
    return sum(counts.values()), checks


def log(msg: str) -> None:
    print(f"sparkify: {msg}", file=sys.stderr, flush=True)


@dataclass
class SongInput:
    good: DataFrame  # usable song rows, one per line of song_data
    files: int
    rejected: dict[str, int]
    good_rows: int
    rows_with_artist: int


@dataclass
class LogInput:
    events: DataFrame  # every distinct line, classified (cached)
    files: int
    quarantined: dict[str, int]
    duplicates: int
    play_days: set[date]  # days with at least one usable play

    @property
    def plays(self) -> DataFrame:
        return logdata.plays(self.events)


@dataclass
class Run:
    spark: SparkSession
    args: Args
    reports: dict[str, AssetReport] = field(default_factory=dict)
    quarantine: dict[str, Any] = field(
        default_factory=lambda: {"rows": 0, "by_reason": {}, "location": None}
    )
    _songs: SongInput | None = None
    _logs: LogInput | None = None
    _cached: list[DataFrame] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.fs = HadoopFS(self.spark)
        self.lake = self.args.lake_uri
        self.raw = self.args.raw_uri

    def table(self, name: str) -> str:
        return f"{self.lake}/{name}"

    def _persist(self, df: DataFrame) -> DataFrame:
        df = df.persist(StorageLevel.MEMORY_AND_DISK)
        self._cached.append(df)
        return df

    def close(self) -> None:
        for df in self._cached:
            df.unpersist()
        self._cached.clear()

    # --- inputs, each read at most once per run -------------------------------------------

    def song_input(self) -> SongInput:
        if self._songs is None:
            glob = f"{self.raw}/{songdata.SONG_GLOB}"
            lines, files = sources.read_glob_lines(self.spark, glob)
            parsed = songdata.parse_songs(lines)
            # songs/artists own song_data's quarantine and counts; a songplays run only needs
            # the usable rows, once, so it skips both the stats pass and the cache.
            owner = "songs" in self.args.assets or "artists" in self.args.assets
            rejected: dict[str, int] = {}
            good_rows = with_artist = 0
            if owner:
                parsed = self._persist(parsed)
                stats = (
                    parsed.groupBy("reason")
                    .agg(
                        F.count(F.lit(1)).alias("n"),
                        F.count("artist_id").alias("with_artist"),
                    )
                    .collect()
                )
                rejected = {r["reason"]: int(r["n"]) for r in stats if r["reason"] is not None}
                good_rows = sum(int(r["n"]) for r in stats if r["reason"] is None)
                with_artist = sum(int(r["with_artist"]) for r in stats if r["reason"] is None)
                # Rebuilt as a whole like the song tables, so stale rows go.
                quarantine_uri = self.table(lake.QUARANTINE_SONGS)
                if rejected:
                    lake.write_whole(
                        parsed.where(F.col("reason").isNotNull()).select(
                            "source_file", "line", "reason"
                        ),
                        quarantine_uri,
                        sort_by=("source_file", "line"),
                    )
                else:
                    self.fs.delete(quarantine_uri)
            good = parsed.where(F.col("reason").isNull())
            self._songs = SongInput(good, files, rejected, good_rows, with_artist)
            log(f"song_data: {files} files" + (f", rejected {rejected or 'none'}" if owner else ""))
        return self._songs

    def log_input(self) -> LogInput:
        if self._logs is None:
            days = self.args.days
            paths = [logdata.day_path(self.raw, d) for d in days]
            existing = [p for p in paths if self.fs.exists(p)]
            lines = sources.read_lines(self.spark, existing)
            events = self._persist(logdata.classify(logdata.deduplicate(lines)))
            # One pass over the cached events answers every count the run needs.
            stats = (
                events.groupBy("file_day", "reason", "is_play")
                .agg(
                    F.count(F.lit(1)).alias("n"),
                    F.sum(F.col("copies") - 1).alias("dups"),
                )
                .collect()
            )
            by_reason: dict[str, int] = {}
            quarantine_days: set[date] = set()
            play_days: set[date] = set()
            duplicates = 0
            for r in stats:
                duplicates += int(r["dups"])
                day = date.fromisoformat(r["file_day"])
                if r["reason"] is not None:
                    by_reason[r["reason"]] = by_reason.get(r["reason"], 0) + int(r["n"])
                    quarantine_days.add(day)
                elif r["is_play"]:
                    play_days.add(day)
            uri = self.table(lake.QUARANTINE_LOGS)
            lake.write_days(
                self.fs,
                logdata.quarantine_rows(events),
                uri,
                partition_by=("day",),
                sort_by=("source_file", "line"),
                days=days,
                days_with_rows=quarantine_days,
                day_dir=lake.iso_day_dir,
            )
            self.quarantine = {
                "rows": sum(by_reason.values()),
                "by_reason": dict(sorted(by_reason.items())),
                "location": f"{self.args.lake.rstrip('/')}/{lake.QUARANTINE_LOGS}",
            }
            self._logs = LogInput(events, len(existing), by_reason, duplicates, play_days)
            log(
                f"log_data: {len(existing)}/{len(days)} day files, "
                f"quarantined {by_reason or 'none'}, duplicates dropped {duplicates}"
            )
        return self._logs

    # --- assets -----------------------------------------------------------------------------

    def run_asset(self, name: str) -> AssetReport:
        t0 = time.monotonic()
        rep = getattr(self, f"_asset_{name}")()
        rep.duration_s = time.monotonic() - t0
        self.reports[name] = rep
        failed = [c.name for c in rep.checks if not c.passed]
        log(f"{name}: {rep.rows} rows in {rep.duration_s:.1f}s, failed checks: {failed or 'none'}")
        return rep

    def _song_report(self, src: SongInput) -> AssetReport:
        return AssetReport(quarantined=dict(src.rejected), input_files=src.files)

    def _asset_songs(self) -> AssetReport:
        src = self.song_input()
        rep = self._song_report(src)
        df = self._persist(songs.build_songs(src.good))
        rep.rows, rep.checks = _total(key_checks(df, "songs", "song_id"))
        rep.duplicates_dropped = src.good_rows - rep.rows
        lake.write_whole(df, self.table("songs"), songs.PARTITION_BY, sort_by=("song_id",))
        return rep

    def _asset_artists(self) -> AssetReport:
        src = self.song_input()
        rep = self._song_report(src)
        df = self._persist(artists.build_artists(src.good))
        rep.rows, rep.checks = _total(key_checks(df, "artists", "artist_id"))
        rep.duplicates_dropped = src.rows_with_artist - rep.rows
        lake.write_whole(df, self.table("artists"), sort_by=("artist_id",))
        return rep

    def _log_report(self, src: LogInput) -> AssetReport:
        return AssetReport(
            quarantined=dict(src.quarantined),
            duplicates_dropped=src.duplicates,
            input_files=src.files,
        )

    def _daily_table(
        self, df: DataFrame, table: str, key: str, sort_by: tuple[str, ...], rep: AssetReport
    ) -> None:
        """Checks, counts per day and writes a year/month/day table for the run's days."""
        per_day, rep.checks = key_checks(df, table, key, by=("year", "month", "day"))
        counts = {date(*ymd): n for ymd, n in per_day.items()}
        lake.write_days(
            self.fs,
            df,
            self.table(table),
            partition_by=("year", "month", "day"),
            sort_by=sort_by,
            days=self.args.days,
            days_with_rows=counts,
            day_dir=lake.ymd_dir,
        )
        rep.rows = sum(counts.values())
        rep.rows_per_day = {d.isoformat(): counts.get(d, 0) for d in self.args.days}

    def _asset_time(self) -> AssetReport:
        src = self.log_input()
        rep = self._log_report(src)
        df = self._persist(time_table.build_time(src.plays))
        self._daily_table(df, "time", "start_time", ("start_time",), rep)
        return rep

    def _asset_songplays(self) -> AssetReport:
        logs = self.log_input()
        rep = self._log_report(logs)
        chosen = songs.pick_songs(self.song_input().good)
        df = self._persist(songplays.build_songplays(logs.plays, chosen))
        self._daily_table(df, "songplays", "songplay_id", ("start_time", "songplay_id"), rep)
        users_uri = self.table("users")
        ref = (
            self.spark.read.schema(schemas.USERS).parquet(users_uri)
            if self.fs.exists(users_uri)
            else None
        )
        rep.checks.append(
            references(
                df,
                "user_id",
                ref,
                "user_id",
                "songplays.user_id in users",
                f"users table missing at {users_uri}: materialize users for these days first",
            )
        )
        return rep

    def _asset_users(self) -> AssetReport:
        logs = self.log_input()
        rep = self._log_report(logs)
        state_uri = self.table(lake.USER_LATEST)
        lake.write_days(
            self.fs,
            users.latest_per_day(logs.plays),
            state_uri,
            partition_by=("day",),
            sort_by=("user_id",),
            days=self.args.days,
            days_with_rows=logs.play_days,
            day_dir=lake.iso_day_dir,
        )
        if self.fs.exists(state_uri):
            state = self.spark.read.schema(schemas.USER_LATEST).parquet(state_uri)
        else:
            state = self.spark.createDataFrame([], schemas.USER_LATEST)
        df = self._persist(users.build_users(state))
        rep.rows, rep.checks = _total(key_checks(df, "users", "user_id"))
        lake.write_whole(df, self.table("users"), sort_by=("user_id",))
        return rep

    def checks(self) -> list[Check]:
        return [c for r in self.reports.values() for c in r.checks]
