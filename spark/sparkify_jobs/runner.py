"""One run: read each input once, build the asked assets in order, stage their output, check it,
and publish only what passed (lake.Staging). Nothing a check has not seen reaches readers."""

from __future__ import annotations

import re
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sparkify_jobs import (
    artists,
    errors,
    graph,
    lake,
    logdata,
    schemas,
    session,
    songdata,
    songplays,
    songs,
    sources,
    time_table,
    users,
    warehouse,
)
from sparkify_jobs.args import Args
from sparkify_jobs.checks import (
    Audit,
    Check,
    ObservedCounts,
    check,
    key_checks,
    quarantine_share,
    references,
)
from sparkify_jobs.errors import JobInputError
from sparkify_jobs.fs import HadoopFS
from sparkify_jobs.report import AssetReport

_STATE_DAY = re.compile(r"/day=([0-9]{4}-[0-9]{2}-[0-9]{2})(/|$)")
_YMD = ("year", "month", "day")


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
    lines: int  # every line read, duplicates included
    quarantined: dict[str, int]
    duplicates: int
    play_days: set[date]  # days with at least one usable play
    quarantine_days: set[date]  # days with at least one bad line

    @property
    def plays(self) -> DataFrame:
        return logdata.plays(self.events)


def _ymd_key(ymd: tuple) -> str:
    return date(*ymd).isoformat()


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
    _releases: list[Callable[[], object]] = field(default_factory=list)
    # Users of this run's plays that its staged users lack (count, sample): set by users'
    # level check, which answers songplays' reference check too (see _users_reference).
    _play_users_missing: tuple[int, list[Any]] | None = None

    def __post_init__(self) -> None:
        self.fs = HadoopFS(self.spark)
        self.lake = self.args.lake_uri
        self.raw = self.args.raw_uri
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.run_id = f"{stamp}-{uuid.uuid4().hex[:8]}"
        self.staging = lake.Staging(self.fs, self.lake, self.run_id)

    def table(self, rel: str) -> str:
        """Where readers find a lake path (the published version)."""
        return f"{self.lake}/{rel}"

    def current(self, rel: str) -> str:
        """What a later asset of this run reads: this run's staged version if it has one."""
        return self.staging.uri(rel) if self.staging.is_staged(rel) else self.table(rel)

    def location(self, rel: str) -> str:
        """A lake path as the report shows it (under --lake as given)."""
        return f"{self.args.lake.rstrip('/')}/{rel}"

    @property
    def staging_location(self) -> str:
        return self.location(f"{lake.STAGING}/{self.run_id}")

    def _persist(
        self, df: DataFrame, level: StorageLevel = StorageLevel.MEMORY_AND_DISK, rows: bool = True
    ) -> DataFrame:
        """Keeps `df` for the rest of the run (session.keep); `rows=False` for a frame of any
        size, which stays Spark's columnar cache (compressed, spilled by the block)."""
        kept, release = session.keep(df, level, rows)
        self._releases.append(release)
        return kept

    def decide(self) -> dict[str, str | None]:
        """For each asset of the run, in order: None when it may be published, else why not. An
        asset is published when it built, its blocking checks passed, and every asset of this
        run it depends on is published too (it may have read what they staged)."""
        why: dict[str, str | None] = {}
        for name in self.args.assets:
            rep = self.reports.get(name)
            failed = [c.name for c in rep.checks if not c.passed and c.blocking] if rep else []
            upstream = [d for d in graph.assets()[name].deps if why.get(d)]
            if rep is None or rep.error is not None:
                why[name] = "it could not be built"
            elif failed:
                why[name] = f"its checks failed: {', '.join(failed)}"
            elif upstream:
                why[name] = f"{', '.join(upstream)}, built in the same step, was not published"
            else:
                why[name] = None
        # What is published in one transaction goes together or not at all.
        for group in self.staging.groups():
            bad = sorted(a for a in group if why.get(a))
            for a in group:
                if a in why and why[a] is None and bad:
                    why[a] = (
                        f"it is published in one transaction with {', '.join(bad)}, which was not"
                    )
        return why

    def publish(self, assets: set[str]) -> None:
        """Publishes what the given assets staged (each staged path has one writer, declared)."""
        self.staging.publish(lambda rel: graph.writer_of(rel) in assets, lambda a: a in assets)

    def close(self, keep_staging: bool) -> None:
        for release in self._releases:
            release()
        self._releases.clear()
        if not keep_staging:
            self.staging.discard()

    # --- inputs, each read at most once per run -------------------------------------------

    def song_input(self) -> SongInput:
        if self._songs is None:
            if not self.fs.exists(self.raw):
                raise JobInputError(
                    f"raw input root {self.args.raw} does not exist: check --raw (storage.raw)"
                )
            glob = f"{self.raw}/{songdata.SONG_GLOB}"
            lines, files, size = sources.read_glob_lines(self.spark, glob)
            # The songs' own settings (a later log_input tunes for the logs' size).
            session.tune_for_input(self.spark, size)
            parsed = self._persist(
                songdata.parse_songs(lines), session.cache_level(self.spark, size)
            )
            stats = (
                parsed.groupBy("reason")
                .agg(F.count(F.lit(1)).alias("n"), F.count("artist_id").alias("with_artist"))
                .collect()
            )
            rejected = {r["reason"]: int(r["n"]) for r in stats if r["reason"] is not None}
            good_rows = sum(int(r["n"]) for r in stats if r["reason"] is None)
            with_artist = sum(int(r["with_artist"]) for r in stats if r["reason"] is None)
            # Rebuilt as a whole like the song tables, so stale rows go. It is songs' to write.
            if "songs" not in self.args.assets:
                pass
            elif rejected:
                bad = parsed.where(F.col("reason").isNotNull()).select(
                    "source_file", F.col("line").cast("binary").alias("line"), "reason"
                )
                self.staging.table(bad, lake.QUARANTINE_SONGS, sort_by=("source_file", "line"))
            else:
                self.staging.empty_table(lake.QUARANTINE_SONGS)
            good = parsed.where(F.col("reason").isNull())
            self._songs = SongInput(good, files, rejected, good_rows, with_artist)
            log(f"song_data: {files} files, rejected {rejected or 'none'}")
        return self._songs

    def log_input(self) -> LogInput:
        if self._logs is None:
            if not self.fs.exists(self.raw):
                # Not "no events": publishing that would empty every day of the range.
                raise JobInputError(
                    f"raw input root {self.args.raw} does not exist: check --raw (storage.raw)"
                )
            days = self.args.days
            paths = [logdata.day_path(self.raw, d) for d in days]
            sizes = {p: self.fs.size(p) for p in paths}
            existing = [p for p in paths if sizes[p] is not None]
            input_bytes = sum(sizes[p] or 0 for p in existing)
            session.tune_for_input(self.spark, input_bytes)
            lines = sources.read_lines(self.spark, existing)
            classified = logdata.classify(logdata.with_file_day(lines))
            # Cached once, parsed once; identical lines are told apart by hash, not shuffled,
            # and only bad lines keep their text (quarantine's).
            parsed = self._persist(
                logdata.bad_lines_only(classified), session.cache_level(self.spark, input_bytes)
            )
            # One job answers every count the run needs: distinct lines per reason and day, how
            # many copies of a line the files held (by the line's hashes), and which play
            # identities more than one line claims.
            copies = logdata.line_copies(parsed)
            got = _line_stats(copies).unionByName(_clashes(copies)).collect()
            stats = [r for r in got if r["n"] is not None]
            affected = [r["songplay_id"] for r in got if r["n"] is None and r["songplay_id"]]
            events, plays_dropped = logdata.resolve_identities(
                parsed, affected, with_lines=classified, keep=self._persist
            )
            if affected:  # some lines became duplicate_event_id: counted again
                stats = _line_stats(logdata.line_copies(events)).collect()
            by_reason: dict[str, int] = {}
            quarantine_days: set[date] = set()
            play_days: set[date] = set()
            duplicates, distinct = plays_dropped, 0
            for r in stats:
                duplicates += int(r["dups"])
                distinct += int(r["n"])
                day = date.fromisoformat(r["file_day"])
                if r["reason"] is not None:
                    by_reason[r["reason"]] = by_reason.get(r["reason"], 0) + int(r["n"])
                    quarantine_days.add(day)
                elif r["is_play"]:
                    play_days.add(day)
            self.quarantine = {
                "rows": sum(by_reason.values()),
                "by_reason": dict(sorted(by_reason.items())),
                "location": self.location(lake.QUARANTINE),
            }
            self._logs = LogInput(
                events,
                len(existing),
                distinct + duplicates,
                by_reason,
                duplicates,
                play_days,
                quarantine_days,
            )
            log(
                f"log_data: {len(existing)}/{len(days)} day files, "
                f"quarantined {by_reason or 'none'}, duplicates dropped {duplicates}"
            )
        return self._logs

    # --- assets -----------------------------------------------------------------------------

    def run_asset(self, name: str) -> AssetReport:
        """Builds one asset; an error is the asset's (recorded, not raised), so the other assets
        of the step still build and publish."""
        t0 = time.monotonic()
        try:
            rep = getattr(self, f"_asset_{name}")()
        except Exception as e:
            traceback.print_exc()
            rep = AssetReport(error=errors.root_cause(e))
        rep.duration_s = time.monotonic() - t0
        self.reports[name] = rep
        failed = [c.name for c in rep.checks if not c.passed]
        outcome = (
            f"error {rep.error['message']}" if rep.error else f"failed checks: {failed or 'none'}"
        )
        log(f"{name}: {rep.rows} rows in {rep.duration_s:.1f}s, {outcome}")
        return rep

    def checks(self) -> list[Check]:
        return [c for r in self.reports.values() for c in r.checks]

    def _song_report(self, src: SongInput) -> AssetReport:
        return AssetReport(
            quarantined=dict(src.rejected),
            input_files=src.files,
            quarantine_location=self.location(lake.QUARANTINE_SONGS),
        )

    def _asset_songs(self) -> AssetReport:
        src = self.song_input()
        rep = self._song_report(src)
        chosen = self._persist(songs.pick_songs(src.good))
        match = chosen.select(*(f.name for f in schemas.SONG_MATCH.fields))
        self.staging.table(
            chosen.select(*songs.COLUMNS), "songs", songs.PARTITION_BY, sort_by=songs.SORT_BY
        )
        # Audited on song_match, one file sorted by song_id, the same songs as the table: its
        # version covers what songplays reads too (artist_name), not only the songs table.
        audit = Audit("song_id", match.columns)
        self.staging.table(match, lake.SONG_MATCH, sort_by=("song_id",), audit=audit)
        p = audit.profile()
        rep.rows = rep.table_rows = p.rows.get((), 0)
        rep.data_version = p.versions.get((), None) or _EMPTY_VERSION
        rep.duplicates_dropped = src.good_rows - rep.rows
        total_lines = src.good_rows + sum(src.rejected.values())
        rep.checks = [
            *key_checks("songs", "songs", "song_id", p),
            quarantine_share(
                "songs",
                "song_data quarantined under 1%",
                sum(src.rejected.values()),
                total_lines,
                rep.quarantine_location,
            ),
        ]
        return rep

    def _asset_artists(self) -> AssetReport:
        src = self.song_input()
        rep = self._song_report(src)
        df = artists.build_artists(src.good)
        audit = Audit("artist_id", artists.COLUMNS)
        self.staging.table(df, "artists", sort_by=("artist_id",), audit=audit)
        p = audit.profile()
        rep.rows = rep.table_rows = p.rows.get((), 0)
        rep.data_version = p.versions.get((), None) or _EMPTY_VERSION
        rep.duplicates_dropped = src.rows_with_artist - rep.rows
        rep.checks = key_checks("artists", "artists", "artist_id", p)
        return rep

    def _log_report(self, src: LogInput, asset: str) -> AssetReport:
        """The asset's report on the run's log input, after staging the asset's own quarantine
        for the run's days from the cached parse (no second read of the files)."""
        rel = lake.quarantine_logs(asset)
        self.staging.days(
            logdata.quarantine_rows(src.events),
            rel,
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
        self,
        df: DataFrame,
        asset: str,
        key: str,
        columns: tuple[str, ...],
        sort_by: tuple[str, ...],
        rep: AssetReport,
        days_with_rows: set[date],
    ) -> None:
        """Stages a year/month/day table for the run's days, profiled by its write."""
        audit = Audit(key, columns, by=_YMD)
        self.staging.days(
            df,
            asset,
            partition_by=_YMD,
            sort_by=sort_by,
            days=self.args.days,
            days_with_rows=days_with_rows,
            day_dir=lake.ymd_dir,
            audit=audit,
        )
        p = audit.profile()
        rep.checks = key_checks(asset, asset, key, p)
        self._per_day(
            rep,
            {date(*k): n for k, n in p.rows.items()},
            {date(*k): v for k, v in p.versions.items()},
        )

    def _per_day(self, rep: AssetReport, rows: dict[date, int], versions: dict[date, str]) -> None:
        rep.rows_per_day = {d.isoformat(): rows.get(d, 0) for d in self.args.days}
        rep.data_versions = {d.isoformat(): versions.get(d, _EMPTY_VERSION) for d in self.args.days}
        rep.rows = sum(rep.rows_per_day.values())

    def _asset_time(self) -> AssetReport:
        src = self.log_input()
        rep = self._log_report(src, "time")
        df = time_table.build_time(src.plays)
        # One row per distinct start_time of the plays: on the days with plays.
        self._daily_table(
            df, "time", "start_time", time_table.COLUMNS, ("start_time",), rep, src.play_days
        )
        return rep

    def _asset_songplays(self) -> AssetReport:
        logs = self.log_input()
        rep = self._log_report(logs, "songplays")
        match_uri = self.current(lake.SONG_MATCH)
        if not self.fs.exists(match_uri):
            raise JobInputError(
                f"song match state missing at {self.location(lake.SONG_MATCH)}: "
                "materialize songs first (songplays matches plays against it)"
            )
        match = self.spark.read.schema(schemas.SONG_MATCH).parquet(match_uri)
        df = songplays.build_songplays(logs.plays, match)
        if not self._users_checked_by_users():
            df = self._persist(df)  # read again by the reference check
        self._daily_table(
            df,
            "songplays",
            "songplay_id",
            songplays.COLUMNS,
            ("start_time", "songplay_id"),
            rep,
            logs.play_days,
        )
        rep.checks.append(self._users_reference(df))
        rep.checks.append(
            quarantine_share(
                "songplays",
                "log_data quarantined under 1%",
                sum(logs.quarantined.values()),
                logs.lines,
                rep.quarantine_location,
            )
        )
        return rep

    def _users_checked_by_users(self) -> bool:
        return self.staging.is_staged("users") and self._play_users_missing is not None

    def _users_reference(self, df: DataFrame, attempts: int = 4) -> Check:
        """`songplays.user_id in users`, against this run's users when it staged them, else the
        published table. A users step of another run may publish users at this moment (two
        renames, see lake.py): a read that loses that race sees files vanish and reads again."""
        users_uri = self.current("users")
        last = self.args.days[-1] if self.args.days else self.args.start
        days = f"{self.args.start}" if last == self.args.start else f"{self.args.start}..{last}"
        orphans_found = (
            f"some plays' users are not in users: materialize users for these days ({days}) first"
        )
        if self._users_checked_by_users():
            # songplays has a row per play of this run's plays, and users' level check looked
            # up each of those plays' users in the users this run staged: its missing users
            # are exactly this check's orphans, with no job of their own.
            n, sample = self._play_users_missing
            return check(
                "songplays", "songplays.user_id in users", n, sample, orphans_found if n else None
            )
        for attempt in range(1, attempts + 1):
            try:
                exists = self.fs.exists(users_uri)
                ref = self.spark.read.schema(schemas.USERS).parquet(users_uri) if exists else None
                return references(
                    "songplays",
                    "songplays.user_id in users",
                    df,
                    "user_id",
                    ref,
                    "user_id",
                    f"users table missing at {self.location('users')}: "
                    f"materialize users for these days ({days}) first",
                    orphans_found,
                )
            except Exception as e:
                text = f"{type(e).__name__}: {e}"
                if attempt == attempts or (
                    "FileNotFound" not in text and "does not exist" not in text
                ):
                    raise
                log(f"users changed while being read (attempt {attempt}), reading again")
                time.sleep(attempt)
        raise AssertionError("unreachable")

    def _published_state(self, exclude: list[str]) -> tuple[DataFrame, set[str]]:
        """`_state/user_latest` as published, without the partitions of `exclude` (days this
        run replaces), and the days it holds."""
        uri = self.table(lake.USER_LATEST)
        parts = {
            m.group(1): p
            for p in self.fs.glob(f"{uri}/day=*", files=False)
            if (m := _STATE_DAY.search(p + "/"))
        }
        days = {d for d in parts if d not in exclude}
        if not days:
            return sources.no_rows(self.spark, schemas.USER_LATEST), set()
        paths = [parts[d] for d in sorted(days)]
        reader = self.spark.read.schema(schemas.USER_LATEST).option("basePath", uri)
        return reader.parquet(*paths), days

    def _asset_users(self) -> AssetReport:
        logs = self.log_input()
        rep = self._log_report(logs, "users")
        run_days = [d.isoformat() for d in self.args.days]
        # 1. The ground truth: each user's latest play per day, for the run's days.
        day_rows = self._persist(users.latest_per_day(logs.plays))
        per_day_audit = Audit("user_id", users.CURRENT_COLUMNS, by=("day",))
        self.staging.days(
            day_rows,
            lake.USER_LATEST,
            partition_by=("day",),
            sort_by=("user_id",),
            days=self.args.days,
            days_with_rows=logs.play_days,
            day_dir=lake.iso_day_dir,
            audit=per_day_audit,
        )
        per_day = per_day_audit.profile()
        # 2. The new user_current: from the old one and the run's days when it exists.
        current_uri = self.table(lake.USER_CURRENT)
        state_days: set[str] = {d.isoformat() for d in logs.play_days}
        recomputed = 0
        if self.fs.exists(current_uri):
            mode = "incremental"
            old = self.spark.read.schema(schemas.USER_CURRENT).parquet(current_uri)
            merged, moved = users.merge_current(old, day_rows, run_days)
            # A user can only lose their latest play to a re-run day: a day never published
            # before (the daily run's usual case) cannot, and costs no job to rule out.
            latest_uri = self.table(lake.USER_LATEST)
            rerun = any(
                self.fs.exists(f"{latest_uri}/{lake.iso_day_dir(d)}") for d in self.args.days
            )
            recomputed = 0
            if rerun:
                moved = self._persist(moved)
                recomputed = moved.count()
            current = merged
            if recomputed:
                # A re-run day lost these users' latest plays: only all days can tell.
                published, read = self._published_state(run_days)
                everything = published.unionByName(day_rows)
                state_days |= read
                fixed = users.latest(everything.join(moved, "user_id", "left_semi"))
                current = merged.unionByName(fixed)
        else:
            mode = "rebuilt"  # an older lake (or a lost state): once from all of the state
            published, read = self._published_state(run_days)
            everything = published.unionByName(day_rows)
            state_days |= read
            current = users.latest(everything)
        current = self._persist(current)
        self.staging.table(current, lake.USER_CURRENT, sort_by=("user_id",))
        # 3. users: a projection of the new user_current, checked against the plays themselves
        #    by its own write.
        df, level = self._level_checked(current, logs)
        audit = Audit("user_id", users.COLUMNS)
        self.staging.table(df, "users", sort_by=("user_id",), audit=audit)
        p = audit.profile()
        rep.checks = [*key_checks("users", "users", "user_id", p), self._level_check(level)]
        rep.table_rows = p.rows.get((), 0)
        self._per_day(
            rep,
            {date.fromisoformat(k[0]): n for k, n in per_day.rows.items()},
            {date.fromisoformat(k[0]): v for k, v in per_day.versions.items()},
        )
        # users is one table over all days: its rows are the table's, not the days'.
        rep.rows = rep.table_rows
        rep.details = {
            "state_mode": mode,
            "state_days_read": len(state_days),
            "users_recomputed": recomputed,
        }
        log(
            f"users: user_current {mode}, {len(state_days)} state days read, "
            f"{recomputed} users recomputed from all days"
        )
        return rep

    def _level_checked(
        self, current: DataFrame, logs: LogInput
    ) -> tuple[DataFrame, ObservedCounts]:
        """users' rows from `current`, and `users.level matches latest play` measured on their
        way to the file (the write's last stage, no job of its own). Recomputed from this run's
        plays alone (not from the state the merge used), each user's latest play of the run's
        days must be the user's current row, or older than it; and where it is the current row,
        level must agree. A lost update (another writer's state swapped in over this one) fails
        here. A play's user with no current row is missing: counted, never written."""
        latest = (
            logs.plays.groupBy("user_id")
            .agg(F.max(F.struct(*users.ORDER, "level")).alias("_p"))
            .select(
                "user_id",
                F.struct(*(F.col(f"_p.{c}").alias(c) for c in users.ORDER)).alias("_k"),
                F.col("_p.level").alias("_level"),
            )
        )
        cur = current.select(*users.COLUMNS, F.struct(*users.ORDER).alias("_c"))
        # Sort-merge, not broadcast: a broadcast would cost a Spark job of its own.
        joined = cur.hint("merge").join(latest, "user_id", "full")
        played, missing = F.col("_k").isNotNull(), F.col("_c").isNull()
        c, k = F.col("_c"), F.col("_k")
        bad = played & (
            missing | (c < k) | ((c == k) & ~F.col("level").eqNullSafe(F.col("_level")))
        )
        level = ObservedCounts("user_id", bad, missing=missing)
        return level.apply(joined).where(~missing).select(*users.COLUMNS), level

    def _level_check(self, level: ObservedCounts) -> Check:
        got = level.result()
        n, sample = got["all"]
        self._play_users_missing = got["missing"]
        return check(
            "users",
            "users.level matches latest play",
            n,
            sample,
            "users' level is not that of their latest play in these days: the users state was "
            "replaced by another writer; re-run users for these days"
            if n
            else None,
        )

    # --- the serving database: stage, check, and move in at publish (warehouse.py) -----------

    def _asset_warehouse_songs(self) -> AssetReport:
        return warehouse.load(self, "warehouse_songs")

    def _asset_warehouse_artists(self) -> AssetReport:
        return warehouse.load(self, "warehouse_artists")

    def _asset_warehouse_users(self) -> AssetReport:
        return warehouse.load(self, "warehouse_users")

    def _asset_warehouse_time(self) -> AssetReport:
        return warehouse.load(self, "warehouse_time")

    def _asset_warehouse_songplays(self) -> AssetReport:
        return warehouse.load(self, "warehouse_songplays")


_EMPTY_VERSION = "0" * 16


def _line_stats(copies: DataFrame) -> DataFrame:
    """Per file day, reason and is_play: distinct lines (n) and extra copies of them (dups)."""
    return (
        copies.groupBy("file_day", "reason", "is_play")
        .agg(F.count(F.lit(1)).alias("n"), F.sum(F.col("_copies") - 1).alias("dups"))
        .withColumn("songplay_id", F.lit(None).cast("string"))
    )


def _clashes(copies: DataFrame) -> DataFrame:
    """logdata.clashing_ids in _line_stats' shape with n NULL, to be collected with it."""
    return logdata.clashing_ids(copies).select(
        F.lit(None).cast("string").alias("file_day"),
        F.lit(None).cast("string").alias("reason"),
        F.lit(None).cast("boolean").alias("is_play"),
        F.lit(None).cast("long").alias("n"),
        F.lit(None).cast("long").alias("dups"),
        "songplay_id",
    )
