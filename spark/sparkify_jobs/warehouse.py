"""The serving database: the warehouse_* assets load the published lake into PostgreSQL.

Write, audit, publish, as for the lake: each asset's rows are read from the lake (the days of
the run, or the whole table), staged over JDBC by Spark into unlogged tables of the
`sparkify_staging` schema named after the run, checked there (counts against the lake, keys,
references to the dimensions), and only when every blocking check passed moved in by **one
transaction** when the run publishes (lake.Staging.external):

- dimensions (songs, artists, users) are upserted, only rows that differ are written, and rows no
  longer in the lake are removed unless a loaded play still references them;
- a day of time and songplays is replaced: rows of the run's days that are not in the staged
  rows go, staged rows that are not there yet come in; identical rows are not touched, so a
  re-run of an unchanged day changes nothing.

A failure or a kill before or during that transaction leaves the previous state: PostgreSQL
rolls an unfinished transaction back. Schema migrations (warehouse/migrations/*.sql, shipped in
the code bundle) are applied first, idempotently, each recorded in schema_migrations.

No password travels in arguments, logs or files: it comes from AWS Secrets Manager
(--warehouse-secret-id) or from PGPASSWORD in the step's environment.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.resources
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparkify_jobs import (
    artists,
    graph,
    lake,
    schemas,
    songplays,
    songs,
    sources,
    time_table,
    users,
)
from sparkify_jobs.args import WarehouseArgs
from sparkify_jobs.checks import Check, check, profile
from sparkify_jobs.errors import JobInputError
from sparkify_jobs.report import AssetReport

if TYPE_CHECKING:
    from sparkify_jobs.runner import Run

STAGING_SCHEMA = "sparkify_staging"
MIGRATIONS = "migrations"
# Staging tables of runs older than this were left by a killed load: dropped by the next one.
STALE_STAGING = timedelta(days=2)
DRIVER = "org.postgresql.Driver"
# Advisory lock keys (any constant; they only have to differ from each other).
MIGRATION_LOCK = 0x5A4C0001
_YMD = ("year", "month", "day")
_DAY_US = 86_400_000_000
_EMPTY_VERSION = "0" * 16


def log(msg: str) -> None:
    print(f"sparkify: warehouse: {msg}", file=sys.stderr, flush=True)


def _ts(col: str) -> str:
    """Epoch microseconds (how start_time is staged: no driver or JVM time zone in the way) as
    the timestamptz it is."""
    return f"(timestamptz 'epoch' + {col} * interval '1 microsecond')"


def _day_start(param: str = "?") -> str:
    """A 'YYYY-MM-DD' parameter as the timestamptz of that UTC midnight."""
    return f"(({param})::date)::timestamp AT TIME ZONE 'UTC'"


@dataclass(frozen=True)
class Table:
    """A warehouse table as the loader stages and moves it."""

    name: str
    key: str
    # (column, staging type); `start_us` is start_time as epoch microseconds.
    staged: tuple[tuple[str, str], ...]
    # Fact tables that reference this one: (table, column), checked before a row is removed.
    referenced_by: tuple[tuple[str, str], ...] = ()

    @property
    def columns(self) -> list[str]:
        return [c for c, _ in self.staged]

    def target(self, col: str) -> str:
        return "start_time" if col == "start_us" else col

    def value(self, col: str, alias: str = "s") -> str:
        return _ts(f"{alias}.start_us") if col == "start_us" else f"{alias}.{col}"


TABLES: dict[str, Table] = {
    "songs": Table(
        "songs",
        "song_id",
        (
            ("song_id", "text"),
            ("title", "text"),
            ("artist_id", "text"),
            ("year", "integer"),
            ("duration", "double precision"),
        ),
        (("songplays", "song_id"),),
    ),
    "artists": Table(
        "artists",
        "artist_id",
        (
            ("artist_id", "text"),
            ("name", "text"),
            ("location", "text"),
            ("latitude", "double precision"),
            ("longitude", "double precision"),
        ),
        (("songplays", "artist_id"),),
    ),
    "users": Table(
        "users",
        "user_id",
        (
            ("user_id", "integer"),
            ("first_name", "text"),
            ("last_name", "text"),
            ("gender", "text"),
            ("level", "text"),
        ),
        (("songplays", "user_id"),),
    ),
    "time": Table(
        "time",
        "start_us",
        (
            ("start_us", "bigint"),
            ("hour", "integer"),
            ("day", "integer"),
            ("week", "integer"),
            ("month", "integer"),
            ("year", "integer"),
            ("weekday", "integer"),
        ),
        (("songplays", "start_time"),),
    ),
    "songplays": Table(
        "songplays",
        "songplay_id",
        (
            ("songplay_id", "text"),
            ("start_us", "bigint"),
            ("user_id", "integer"),
            ("level", "text"),
            ("song_id", "text"),
            ("artist_id", "text"),
            ("session_id", "integer"),
            ("location", "text"),
            ("user_agent", "text"),
        ),
    ),
}

# The order of the move: dimensions before the fact that references them.
MOVE_ORDER = ("songs", "artists", "users", "time", "songplays")


# --- connections ------------------------------------------------------------------------------


def _sqlstate(e: BaseException) -> str | None:
    java = getattr(e, "java_exception", None)
    while java is not None:
        try:
            state = java.getSQLState() if hasattr(java, "getSQLState") else None
        except Exception:
            state = None
        if state:
            return str(state)
        cause = java.getCause()
        if cause is None or cause.equals(java):
            return None
        java = cause
    return None


def password(w: WarehouseArgs) -> str | None:
    """The password: from AWS Secrets Manager when a secret is named, else PGPASSWORD (the
    local EMR passes its environment to steps), else none (trust or certificate auth)."""
    if w.secret_id:
        try:
            import boto3
        except ImportError:
            raise JobInputError(
                "--warehouse-secret-id needs boto3 on the cluster's Python (EMR ships it)"
            ) from None
        from botocore.exceptions import NoRegionError

        try:
            client = boto3.client("secretsmanager", region_name=w.secret_region)
        except NoRegionError:
            raise JobInputError(
                f"no AWS region for the warehouse secret {w.secret_id}: pass "
                "--warehouse-secret-region (the orchestrator passes emr.region)"
            ) from None
        try:
            secret = client.get_secret_value(SecretId=w.secret_id)["SecretString"]
        except client.exceptions.ResourceNotFoundException:
            raise JobInputError(
                f"warehouse secret {w.secret_id} not found in Secrets Manager "
                f"({w.secret_region or 'default region'}): check warehouse.secretId"
            ) from None
        try:
            doc = json.loads(secret)
        except json.JSONDecodeError:
            return secret  # a plain-text secret is the password itself
        if isinstance(doc, dict) and isinstance(doc.get("password"), str):
            return doc["password"]
        raise JobInputError(
            f"warehouse secret {w.secret_id} is JSON without a string 'password' field "
            "(RDS-managed secrets have one)"
        )
    return os.environ.get("PGPASSWORD") or None


class Db:
    """JDBC through the driver's JVM (the jar comes with --jars): what the move and the checks
    use. Spark's own JDBC writer stages the rows."""

    def __init__(self, run: Run, w: WarehouseArgs):
        self.spark = run.spark
        self.w = w
        self._password = password(w)
        self._jvm = run.spark.sparkContext._jvm

    @property
    def where(self) -> str:
        return f"{self.w.url} as {self.w.user}"

    def writer_options(self) -> dict[str, str]:
        opts = {"url": self.w.url, "user": self.w.user, "driver": DRIVER}
        if self._password is not None:
            opts["password"] = self._password
        return opts

    def connect(self) -> Any:
        try:
            driver = self._jvm.org.postgresql.Driver()
        except TypeError:  # py4j's JavaPackage: the class is not on the classpath
            raise JobInputError(
                "the PostgreSQL JDBC driver is not on the classpath: pass its jar to spark-submit "
                "with --jars (the orchestrator ships it with the code bundle)"
            ) from None
        props = self._jvm.java.util.Properties()
        props.setProperty("user", self.w.user)
        if self._password is not None:
            props.setProperty("password", self._password)
        props.setProperty("ApplicationName", "sparkify-warehouse")
        try:
            conn = driver.connect(self.w.url, props)
        except Exception as e:
            state = _sqlstate(e) or ""
            # Credentials, a database that does not exist, no permission: no retry helps.
            if state.startswith("28") or state in ("3D000", "42501"):
                raise JobInputError(
                    f"cannot use the warehouse {self.where}: {_message(e)} (SQLSTATE {state}); "
                    "check warehouse.user, warehouse.database and the password "
                    "(warehouse.secretId or PGPASSWORD)"
                ) from None
            raise
        conn.setAutoCommit(False)
        return conn


def _message(e: BaseException) -> str:
    java = getattr(e, "java_exception", None)
    if java is not None:
        try:
            return str(java.getMessage()).split("\n")[0]
        except Exception:
            pass
    return str(e).split("\n")[0]


def _bind(ps: Any, params: Sequence[Any]) -> None:
    for i, p in enumerate(params, start=1):
        if p is None:
            ps.setObject(i, None)
        elif isinstance(p, bool):
            ps.setBoolean(i, p)
        elif isinstance(p, int):
            ps.setLong(i, p)
        else:
            ps.setString(i, str(p))


def query(conn: Any, sql: str, params: Sequence[Any] = ()) -> list[list[str | None]]:
    """Rows as lists of strings (None for NULL): callers convert what they need."""
    ps = conn.prepareStatement(sql)
    try:
        _bind(ps, params)
        rs = ps.executeQuery()
        n = rs.getMetaData().getColumnCount()
        out: list[list[str | None]] = []
        while rs.next():
            row = [rs.getString(i) for i in range(1, n + 1)]
            out.append([None if v is None else str(v) for v in row])
        return out
    finally:
        ps.close()


def execute(conn: Any, sql: str, params: Sequence[Any] = ()) -> int:
    ps = conn.prepareStatement(sql)
    try:
        _bind(ps, params)
        return int(ps.executeUpdate())
    finally:
        ps.close()


# --- migrations -------------------------------------------------------------------------------


def migration_files() -> list[tuple[str, str]]:
    """(file name, SQL) of every migration, sorted: shipped in the package (the code bundle
    carries warehouse/migrations/ as sparkify_jobs/migrations/), else from a checkout."""
    found: dict[str, str] = {}
    try:
        shipped = importlib.resources.files("sparkify_jobs").joinpath(MIGRATIONS)
        if shipped.is_dir():
            for f in shipped.iterdir():
                if f.name.endswith(".sql"):
                    found[f.name] = f.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError, OSError):
        pass
    if not found:
        here = Path(__file__).resolve().parent
        for f in (here.parents[1] / "warehouse" / MIGRATIONS).glob("*.sql"):
            found[f.name] = f.read_text(encoding="utf-8")
    if not found:
        raise JobInputError("no warehouse migrations found (warehouse/migrations/*.sql)")
    return sorted(found.items())


def migrate(conn: Any) -> list[str]:
    """Applies the migrations not yet applied, in order, in one transaction under an advisory
    lock (two loads starting at once apply them once). Returns the versions applied now."""
    files = migration_files()
    applied_now: list[str] = []
    try:
        query(conn, "SELECT pg_advisory_xact_lock(?)", [MIGRATION_LOCK])
        execute(
            conn,
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())",
        )
        applied = {
            r[0]: r[1] for r in query(conn, "SELECT version, checksum FROM schema_migrations")
        }
        for name, sql in files:
            version = name.split("_", 1)[0]
            checksum = hashlib.sha256(sql.encode("utf-8")).hexdigest()
            if version in applied:
                if applied[version] != checksum:
                    raise JobInputError(
                        f"warehouse migration {name} changed after it was applied: migrations "
                        "are never edited once applied; add a new one instead"
                    )
                continue
            st = conn.createStatement()
            try:
                st.execute(sql)
            finally:
                st.close()
            execute(
                conn,
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (?, ?, ?)",
                [version, name, checksum],
            )
            applied_now.append(version)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    if applied_now:
        log(f"applied migrations {', '.join(applied_now)}")
    return applied_now


# --- reading the lake -------------------------------------------------------------------------


def _manifest_rows(run: Run, asset: str, day: date) -> int | None:
    """Rows of the day's last success by the orchestrator's manifest, None without one."""
    uri = f"{run.lake}/_manifests/{asset}/{day.isoformat()}.json"
    if not run.fs.exists(uri):
        return None
    try:
        doc = json.loads(run.fs.read_bytes(uri))
        success = doc.get("lastSuccess")
        return None if not success else int(success.get("rows") or 0)
    except (ValueError, TypeError, AttributeError):
        return None


def _days(run: Run, asset: str, rel: str, schema: Any, day_dir: Callable[[date], str]) -> DataFrame:
    """The published partitions of the run's days. A day without a partition is fine only when
    the orchestrator recorded it as materialized with no rows (the lake keeps no empty
    partitions); otherwise nothing is loaded and the reason says what to do."""
    base = run.table(rel)
    paths, missing = [], []
    for d in run.args.days:
        p = f"{base}/{day_dir(d)}"
        if run.fs.exists(p):
            paths.append(p)
        elif _manifest_rows(run, asset, d) != 0:
            missing.append(d.isoformat())
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise JobInputError(
            f"{rel} has no partition for {shown} at {run.location(rel)}: materialize {asset} for "
            "these days first; nothing was loaded"
        )
    if not paths:
        return sources.no_rows(run.spark, schema)
    return run.spark.read.schema(schema).option("basePath", base).parquet(*paths)


def _whole(run: Run, asset: str, rel: str, schema: Any) -> DataFrame:
    uri = run.table(rel)
    if not run.fs.exists(uri):
        raise JobInputError(
            f"{rel} table missing at {run.location(rel)}: materialize {asset} first; "
            "nothing was loaded"
        )
    return run.spark.read.schema(schema).parquet(uri)


# --- one run's load ---------------------------------------------------------------------------


@dataclass
class Staged:
    table: Table
    stage: str  # schema-qualified staging table
    rep: AssetReport
    day_range: tuple[str, str] | None  # [start, end) of a day-replaced table


@dataclass
class Load:
    """A run's warehouse work: staged tables, checked, moved in together at publish."""

    run: Run
    db: Db
    conn: Any
    staged: dict[str, Staged] = field(default_factory=dict)
    closed: bool = False

    @property
    def prefix(self) -> str:
        return "r" + "".join(c if c.isalnum() else "_" for c in self.run.run_id.lower())

    @classmethod
    def of(cls, run: Run) -> Load:
        existing = getattr(run, "_warehouse_load", None)
        if existing is not None:
            return existing
        w = run.args.warehouse
        if w is None:
            raise JobInputError("warehouse assets need --warehouse-url and --warehouse-user")
        db = Db(run, w)
        conn = db.connect()
        load = cls(run, db, conn)
        migrate(conn)
        load._drop_stale_staging()
        # One transaction for every warehouse table of the step: all published, or none.
        run.staging.external(
            load.publish,
            load.discard,
            lambda: {a for a in run.args.assets if graph.assets()[a].warehouse},
        )
        run._warehouse_load = load  # type: ignore[attr-defined]
        return load

    def _drop_stale_staging(self) -> None:
        cutoff = datetime.now(timezone.utc) - STALE_STAGING
        bound = "r" + cutoff.strftime("%Y%m%dt%H%M%Sz")
        old = query(
            self.conn,
            "SELECT tablename FROM pg_tables WHERE schemaname = ? AND tablename < ?",
            [STAGING_SCHEMA, bound],
        )
        for (name,) in old:
            execute(self.conn, f'DROP TABLE IF EXISTS {STAGING_SCHEMA}."{name}"')
        self.conn.commit()
        if old:
            log(f"dropped {len(old)} staging tables left by loads older than {STALE_STAGING}")

    # -- staging --

    def stage(self, t: Table, df: DataFrame, rep: AssetReport, days: bool) -> Staged:
        name = f"{STAGING_SCHEMA}.{self.prefix}_{t.name}"
        cols = ", ".join(f"{c} {ty}" for c, ty in t.staged)
        execute(self.conn, f"DROP TABLE IF EXISTS {name}")
        execute(self.conn, f"CREATE UNLOGGED TABLE {name} ({cols})")
        self.conn.commit()
        writers = max(1, min(4, self.run.spark.sparkContext.defaultParallelism))
        (
            df.select(*t.columns)
            .write.format("jdbc")
            .options(**self.db.writer_options())
            .option("dbtable", name)
            .option("batchsize", "5000")
            # pgjdbc sends a batch as multi-row INSERTs instead of one statement per row.
            .option("reWriteBatchedInserts", "true")
            .option("numPartitions", str(writers))
            .option("isolationLevel", "READ_COMMITTED")
            .mode("append")
            .save()
        )
        args = self.run.args
        day_range = (
            (args.start.isoformat(), args.end.isoformat())
            if days and args.start and args.end
            else None
        )
        staged = Staged(t, name, rep, day_range)
        self.staged[t.name] = staged
        return staged

    # -- checks on the staged rows --

    def count_check(self, asset: str, s: Staged, expected: dict[date, int] | int) -> Check:
        name = f"{asset}.rows match lake"
        if isinstance(expected, int):
            got = int(query(self.conn, f"SELECT count(*) FROM {s.stage}")[0][0] or 0)
            diff = abs(got - expected)
            return check(
                asset,
                name,
                diff,
                [],
                f"staged {got:,} rows, the lake has {expected:,}: run the load again"
                if diff
                else None,
            )
        rows = query(self.conn, f"SELECT start_us / {_DAY_US}, count(*) FROM {s.stage} GROUP BY 1")
        got = {date(1970, 1, 1) + timedelta(days=int(d or 0)): int(n or 0) for d, n in rows}
        days = sorted(set(got) | set(expected))
        bad = [d for d in days if got.get(d, 0) != expected.get(d, 0)]
        failing = sum(abs(got.get(d, 0) - expected.get(d, 0)) for d in bad)
        return check(
            asset,
            name,
            failing,
            [d.isoformat() for d in bad[:5]],
            f"staged rows differ from the lake's for {', '.join(d.isoformat() for d in bad[:5])}: "
            "run the load again"
            if bad
            else None,
        )

    def unique_check(self, asset: str, s: Staged, label: str) -> Check:
        key = s.table.key
        sql = f"SELECT {key} FROM {s.stage} GROUP BY {key} HAVING count(*) > 1"
        n = int(query(self.conn, f"SELECT count(*) FROM ({sql}) d")[0][0] or 0)
        sample = [r[0] for r in query(self.conn, f"{sql} ORDER BY 1 LIMIT 5")] if n else []
        return check(asset, f"{asset}.{label} unique", n, sample)

    def reference_check(
        self, asset: str, s: Staged, col: str, ref: str, ref_col: str, todo: str
    ) -> Check:
        """Every non-null `col` of the staged rows is in the warehouse's `ref` (or staged for it
        by this run)."""
        value = s.table.value(col)
        conds = [f"NOT EXISTS (SELECT 1 FROM {ref} r WHERE r.{ref_col} = {value})"]
        mine = self.staged.get(ref)
        if mine is not None:
            theirs = mine.table.value(mine.table.key, "m")
            conds.append(f"NOT EXISTS (SELECT 1 FROM {mine.stage} m WHERE {theirs} = {value})")
        sql = (
            f"SELECT DISTINCT {value} AS v FROM {s.stage} s "
            f"WHERE s.{col} IS NOT NULL AND {' AND '.join(conds)}"
        )
        n = int(query(self.conn, f"SELECT count(*) FROM ({sql}) d")[0][0] or 0)
        sample = [r[0] for r in query(self.conn, f"{sql} ORDER BY 1 LIMIT 5")] if n else []
        label = "start_time" if col == "start_us" else col
        return check(
            asset,
            f"{asset}.{label} in {ref}",
            n,
            sample,
            f"plays reference {ref} not in the warehouse: {todo}" if n else None,
        )

    # -- publish: one transaction --

    def publish(self) -> None:
        if not self.staged:
            return
        conn = self.conn
        plays = self.staged.get("songplays")
        if plays is not None and plays.day_range is not None:
            first, end = plays.day_range
            last = (date.fromisoformat(end) - timedelta(days=1)).isoformat()
            # Its own short transaction: an empty partition is harmless, and creating one takes
            # a lock on songplays that the move should not hold for its whole length.
            query(conn, "SELECT ensure_songplays_partitions(?::date, ?::date)", [first, last])
            conn.commit()
        order = [self.staged[t] for t in MOVE_ORDER if t in self.staged]
        try:
            for s in order:
                if s.table.name != "songplays":
                    self._upsert(s)
            if plays is not None:
                self._replace_days(plays)
            for s in order:
                if s.table.name != "songplays":
                    self._prune(s)
            for s in order:
                execute(conn, f"DROP TABLE {s.stage}")
            conn.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                conn.rollback()
            raise
        for s in order:
            log(f"{s.table.name}: {s.rep.details}")
        self._close()

    def _upsert(self, s: Staged) -> None:
        t = s.table
        cols = t.columns
        targets = [t.target(c) for c in cols]
        key = t.target(t.key)
        rest = [c for c in targets if c != key]
        values = ", ".join(t.value(c) for c in cols)
        sql = (
            f"WITH w AS (INSERT INTO {t.name} AS t ({', '.join(targets)}) "
            f"SELECT {values} FROM {s.stage} s "
            f"ON CONFLICT ({key}) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in rest)} "
            f"WHERE ({', '.join(f't.{c}' for c in rest)}) IS DISTINCT FROM "
            f"({', '.join(f'excluded.{c}' for c in rest)}) "
            "RETURNING (xmax = 0) AS inserted) "
            "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM w"
        )
        ins, upd = query(self.conn, sql)[0]
        s.rep.details.update({"inserted": int(ins or 0), "updated": int(upd or 0)})

    def _day_filter(self, s: Staged, alias: str) -> tuple[str, list[str]]:
        if s.day_range is None:
            return "TRUE", []
        return (
            f"{alias}.start_time >= {_day_start()} AND {alias}.start_time < {_day_start()}",
            list(s.day_range),
        )

    def _prune(self, s: Staged) -> None:
        """Rows (of the run's days, for a day table) that the lake no longer has, unless a play
        still references them; those are kept and counted."""
        t = s.table
        key = t.target(t.key)
        where, params = self._day_filter(s, "t")
        gone = f"NOT EXISTS (SELECT 1 FROM {s.stage} s WHERE {t.value(t.key)} = t.{key})"
        refs = " AND ".join(
            f"NOT EXISTS (SELECT 1 FROM {ft} f WHERE f.{fc} = t.{key})"
            for ft, fc in t.referenced_by
        )
        deleted = execute(
            self.conn,
            f"DELETE FROM {t.name} t WHERE {where} AND {gone}" + (f" AND {refs}" if refs else ""),
            params,
        )
        kept = int(
            query(self.conn, f"SELECT count(*) FROM {t.name} t WHERE {where} AND {gone}", params)[
                0
            ][0]
            or 0
        )
        s.rep.details.update({"deleted": deleted, "kept_referenced": kept})

    def _replace_days(self, s: Staged) -> None:
        t = s.table
        where, params = self._day_filter(s, "t")
        rest = [c for c in t.columns if c not in ("songplay_id", "start_us")]
        same = (
            f"s.songplay_id = t.songplay_id AND {_ts('s.start_us')} = t.start_time AND "
            f"({', '.join(f's.{c}' for c in rest)}) IS NOT DISTINCT FROM "
            f"({', '.join(f't.{c}' for c in rest)})"
        )
        deleted = execute(
            self.conn,
            f"DELETE FROM songplays t WHERE {where} AND NOT EXISTS "
            f"(SELECT 1 FROM {s.stage} s WHERE {same})",
            params,
        )
        targets = [t.target(c) for c in t.columns]
        inserted = execute(
            self.conn,
            f"INSERT INTO songplays ({', '.join(targets)}) "
            f"SELECT {', '.join(t.value(c) for c in t.columns)} FROM {s.stage} s "
            f"WHERE NOT EXISTS (SELECT 1 FROM songplays t WHERE t.songplay_id = s.songplay_id "
            f"AND t.start_time = {_ts('s.start_us')})",
        )
        s.rep.details.update({"deleted": deleted, "inserted": inserted})

    def discard(self) -> None:
        if self.closed:  # published: the move dropped the staging tables
            return
        try:
            for s in self.staged.values():
                execute(self.conn, f"DROP TABLE IF EXISTS {s.stage}")
            self.conn.commit()
        finally:
            self._close()

    def _close(self) -> None:
        self.closed = True
        with contextlib.suppress(Exception):
            self.conn.close()


# --- the assets -------------------------------------------------------------------------------


def _version(p: Any, group: tuple = ()) -> str:
    return p.versions.get(group, None) or _EMPTY_VERSION


def load(run: Run, asset: str) -> AssetReport:
    """Stages and checks one warehouse asset; the move happens when the run publishes."""
    return _LOADERS[asset](run, Load.of(run))


def _catalog(
    run: Run, w: Load, asset: str, lake_asset: str, table: str, schema: Any, columns: Sequence[str]
) -> AssetReport:
    t = TABLES[table]
    # A lake table of any size: Spark's columnar cache, not rows (session.keep).
    df = run._persist(_whole(run, lake_asset, lake_asset, schema).select(*columns), rows=False)
    p = profile(df, t.key, columns)
    rep = AssetReport()
    rep.rows = rep.table_rows = p.rows.get((), 0)
    rep.data_version = _version(p)
    s = w.stage(t, df, rep, days=False)
    rep.checks = [w.count_check(asset, s, rep.rows), w.unique_check(asset, s, t.key)]
    return rep


def _warehouse_songs(run: Run, w: Load) -> AssetReport:
    return _catalog(run, w, "warehouse_songs", "songs", "songs", schemas.SONGS, songs.COLUMNS)


def _warehouse_artists(run: Run, w: Load) -> AssetReport:
    return _catalog(
        run, w, "warehouse_artists", "artists", "artists", schemas.ARTISTS, artists.COLUMNS
    )


def _per_day(run: Run, rep: AssetReport, p: Any, key: Callable[[tuple], date]) -> dict[date, int]:
    rows = {key(k): n for k, n in p.rows.items()}
    versions = {key(k): v for k, v in p.versions.items()}
    rep.rows_per_day = {d.isoformat(): rows.get(d, 0) for d in run.args.days}
    rep.data_versions = {d.isoformat(): versions.get(d, _EMPTY_VERSION) for d in run.args.days}
    rep.rows = sum(rep.rows_per_day.values())
    return rows


def _warehouse_users(run: Run, w: Load) -> AssetReport:
    """The whole users table (one row per user, its latest state over all days) is upserted;
    a day's partition is the users who played that day, as the users state has them."""
    t = TABLES["users"]
    latest = _days(run, "users", lake.USER_LATEST, schemas.USER_LATEST, lake.iso_day_dir)
    per_day = profile(latest, "user_id", users.CURRENT_COLUMNS, by=("day",))
    df = run._persist(
        _whole(run, "users", "users", schemas.USERS).select(*users.COLUMNS), rows=False
    )
    p = profile(df, "user_id", users.COLUMNS)
    rep = AssetReport()
    _per_day(run, rep, per_day, lambda k: date.fromisoformat(k[0]))
    rep.rows = rep.table_rows = p.rows.get((), 0)
    s = w.stage(t, df, rep, days=False)
    rep.checks = [
        w.count_check("warehouse_users", s, rep.rows),
        w.unique_check("warehouse_users", s, "user_id"),
    ]
    return rep


def _daily(
    run: Run, w: Load, asset: str, rel: str, schema: Any, columns: Sequence[str], key: str
) -> tuple[AssetReport, Staged, DataFrame]:
    t = TABLES[rel]
    df = run._persist(_days(run, rel, rel, schema, lake.ymd_dir), rows=False)
    p = profile(df, key, columns, by=_YMD)
    rep = AssetReport()
    expected = _per_day(run, rep, p, lambda k: date(*k))
    staged_cols = [
        F.unix_micros("start_time").alias("start_us") if c == "start_us" else F.col(c)
        for c in t.columns
    ]
    s = w.stage(t, df.select(*staged_cols), rep, days=True)
    rep.checks = [
        w.count_check(asset, s, expected),
        w.unique_check(asset, s, key if key != "start_time" else "start_time"),
    ]
    return rep, s, df


def _warehouse_time(run: Run, w: Load) -> AssetReport:
    rep, _, _ = _daily(
        run, w, "warehouse_time", "time", schemas.TIME, time_table.COLUMNS, "start_time"
    )
    return rep


def _warehouse_songplays(run: Run, w: Load) -> AssetReport:
    asset = "warehouse_songplays"
    rep, s, _ = _daily(
        run, w, asset, "songplays", schemas.SONGPLAYS, songplays.COLUMNS, "songplay_id"
    )
    days = _describe_days(run)
    rep.checks += [
        w.reference_check(
            asset, s, "user_id", "users", "user_id", f"materialize warehouse_users for {days} first"
        ),
        w.reference_check(
            asset, s, "song_id", "songs", "song_id", "materialize warehouse_songs first"
        ),
        w.reference_check(
            asset, s, "artist_id", "artists", "artist_id", "materialize warehouse_artists first"
        ),
        w.reference_check(
            asset,
            s,
            "start_us",
            "time",
            "start_time",
            f"materialize warehouse_time for {days} first",
        ),
    ]
    return rep


def _describe_days(run: Run) -> str:
    days = run.args.days
    if not days:
        return "these days"
    return days[0].isoformat() if len(days) == 1 else f"{days[0]}..{days[-1]}"


_LOADERS: dict[str, Callable[[Run, Load], AssetReport]] = {
    "warehouse_songs": _warehouse_songs,
    "warehouse_artists": _warehouse_artists,
    "warehouse_users": _warehouse_users,
    "warehouse_time": _warehouse_time,
    "warehouse_songplays": _warehouse_songplays,
}
