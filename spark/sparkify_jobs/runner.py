"""One run: read each input once, materialize the asked assets in order, check, report."""

from __future__ import annotations

import re
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
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

_STATE_DAY = re.compile(r"/day=([0-9]{4}-[0-9]{2}-[0-9]{2})/")


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
    quarantine_days: set[date]  # days with at least one bad line

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
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.run_id = f"{stamp}-{uuid.uuid4().hex[:8]}"

    def table(self, name: str) -> str:
        return f"{self.lake}/{name}"

    def location(self, name: str) -> str:
        """A lake path as the report shows it (under --lake as given)."""
        return f"{self.args.lake.rstrip('/')}/{name}"

    def staging(self, name: str) -> str:
        """Scratch path of this run only; the whole `_staging/<run id>/` goes in close()."""
        return f"{self.lake}/{lake.STAGING}/{self.run_id}/{name}"

    def _persist(self, df: DataFrame) -> DataFrame:
        df = df.persist(StorageLevel.MEMORY_AND_DISK)
        self._cached.append(df)
        return df

    def close(self) -> None:
        for df in self._cached:
            df.unpersist()
        self._cached.clear()
        self.fs.delete(f"{self.lake}/{lake.STAGING}/{self.run_id}")

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
            # The bad lines of the run's input, counted once; each log asset writes its own
            # copy of them (_log_report), so parallel steps never share a quarantine path.
            self.quarantine = {
                "rows": sum(by_reason.values()),
                "by_reason": dict(sorted(by_reason.items())),
                "location": self.location(lake.QUARANTINE),
            }
            self._logs = LogInput(
                events, len(existing), by_reason, duplicates, play_days, quarantine_days
            )
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
        return AssetReport(
            quarantined=dict(src.rejected),
            input_files=src.files,
            quarantine_location=self.location(lake.QUARANTINE_SONGS),
        )

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

    def _log_report(self, src: LogInput, asset: str) -> AssetReport:
        """The asset's report on the run's log input, after writing the asset's own quarantine
        for the run's days from the cached parse (no second read of the files)."""
        rel = lake.quarantine_logs(asset)
        lake.write_days(
            self.fs,
            logdata.quarantine_rows(src.events),
            self.table(rel),
            partition_by=("day",),
            sort_by=("source_file", "line"),
            days=self.args.days,
            days_with_rows=src.quarantine_days,
            day_dir=lake.iso_day_dir,
        )
        return AssetReport(
            quarantined=dict(src.quarantined),
            duplicates_dropped=src.duplicates,
            input_files=src.files,
            quarantine_location=self.location(rel),
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
        rep = self._log_report(src, "time")
        df = self._persist(time_table.build_time(src.plays))
        self._daily_table(df, "time", "start_time", ("start_time",), rep)
        return rep

    def _asset_songplays(self) -> AssetReport:
        logs = self.log_input()
        rep = self._log_report(logs, "songplays")
        chosen = songs.pick_songs(self.song_input().good)
        df = self._persist(songplays.build_songplays(logs.plays, chosen))
        self._daily_table(df, "songplays", "songplay_id", ("start_time", "songplay_id"), rep)
        rep.checks.append(self._users_reference(df))
        return rep

    def _users_reference(self, df: DataFrame, attempts: int = 4) -> Check:
        """`songplays.user_id in users`. A users step for the same days may be swapping users
        in at the same moment (lake.replace_whole: two renames): a read that loses that race
        sees its files vanish, or no table between the renames while the old one sits in a
        `_staging/*/users.replaced`. Both are retried on a fresh read."""
        users_uri = self.table("users")
        swapping = f"{self.lake}/{lake.STAGING}/*/users.replaced"
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            try:
                exists = self.fs.exists(users_uri)
                if not exists and not last and self.fs.glob(swapping, files=False):
                    raise FileNotFoundError(f"{users_uri} is being replaced")
                ref = self.spark.read.schema(schemas.USERS).parquet(users_uri) if exists else None
                return references(
                    df,
                    "user_id",
                    ref,
                    "user_id",
                    "songplays.user_id in users",
                    f"users table missing at {users_uri}: materialize users for these days first",
                )
            except Exception as e:
                text = f"{type(e).__name__}: {e}"
                if last or ("FileNotFound" not in text and "does not exist" not in text):
                    raise
                log(f"users changed while being read (attempt {attempt}), reading again")
                time.sleep(attempt)
        raise AssertionError("unreachable")

    def _read_state(self, days: list[date] | None = None) -> DataFrame:
        """`_state/user_latest`: the partitions of `days` (those that exist), or all of it."""
        uri = self.table(lake.USER_LATEST)
        reader = self.spark.read.schema(schemas.USER_LATEST)
        if days is None:
            if self.fs.exists(uri):
                return reader.parquet(uri)
            paths = []
        else:
            paths = [f"{uri}/{lake.iso_day_dir(d)}" for d in days]
            paths = [p for p in paths if self.fs.exists(p)]
        if not paths:
            return self.spark.createDataFrame([], schemas.USER_LATEST)
        return reader.option("basePath", uri).parquet(*paths)

    def _asset_users(self) -> AssetReport:
        logs = self.log_input()
        rep = self._log_report(logs, "users")
        # 1. The ground truth: each user's latest play per day, for the run's days.
        lake.write_days(
            self.fs,
            users.latest_per_day(logs.plays),
            self.table(lake.USER_LATEST),
            partition_by=("day",),
            sort_by=("user_id",),
            days=self.args.days,
            days_with_rows=logs.play_days,
            day_dir=lake.iso_day_dir,
        )
        # 2. The new user_current, from the old one and the run's days only when it exists.
        current_uri = self.table(lake.USER_CURRENT)
        state_reads: list[DataFrame] = []
        recomputed = 0
        if self.fs.exists(current_uri):
            mode = "incremental"
            old = self.spark.read.schema(schemas.USER_CURRENT).parquet(current_uri)
            day_rows = self._read_state(sorted(logs.play_days))
            state_reads.append(day_rows)
            merged, moved = users.merge_current(
                old, day_rows, [d.isoformat() for d in self.args.days]
            )
            moved = self._persist(moved)
            recomputed = moved.count()
            current = merged
            if recomputed:
                # A re-run day lost these users' latest plays: only all days can tell.
                everything = self._read_state()
                state_reads.append(everything)
                fixed = users.latest(everything.join(moved, "user_id", "left_semi"))
                current = merged.unionByName(fixed)
        else:
            mode = "rebuilt"  # an older lake (or a lost swap): once from all of the state
            everything = self._read_state()
            state_reads.append(everything)
            current = users.latest(everything)
        # The new version is computed from the old one: write aside, then swap it in.
        lake.replace_whole(
            self.fs, current, current_uri, self.staging("user_current"), sort_by=("user_id",)
        )
        # 3. users: a projection of user_current, swapped in the same way.
        current = self.spark.read.schema(schemas.USER_CURRENT).parquet(current_uri)
        df = self._persist(current.select(*users.COLUMNS))
        rep.rows, rep.checks = _total(key_checks(df, "users", "user_id"))
        lake.replace_whole(
            self.fs, df, self.table("users"), self.staging("users"), sort_by=("user_id",)
        )
        state_days = {
            m.group(1)
            for df_read in state_reads
            for f in df_read.inputFiles()
            if (m := _STATE_DAY.search(f))
        }
        rep.extra = {
            "state_mode": mode,
            "state_days_read": len(state_days),
            "users_recomputed": recomputed,
        }
        log(
            f"users: user_current {mode}, {len(state_days)} state days read, "
            f"{recomputed} users recomputed from all days"
        )
        return rep

    def checks(self) -> list[Check]:
        return [c for r in self.reports.values() for c in r.checks]
