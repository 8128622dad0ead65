"""Argument parsing and validation, pure Python so a bad call fails before Spark starts."""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from sparkify_jobs import ASSETS, DAILY_ASSETS, graph

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_SCHEMES = ("file", "s3", "s3a", "hdfs")
_JDBC_RE = re.compile(
    r"^jdbc:postgresql://[A-Za-z0-9.\[\]:_-]+(:[0-9]{1,5})?/[A-Za-z0-9_-]+(\?[^\s]*)?$"
)
_CREDENTIAL_RE = re.compile(r"(?i)[?&](password|sslpassword|sslkey)=")


class ArgumentError(Exception):
    """Invalid command line; the message names the argument."""


@dataclass(frozen=True)
class WarehouseArgs:
    """Where the warehouse assets load (warehouse.py). Never a password: that comes from AWS
    Secrets Manager (`secret_id`) or the step's environment (PGPASSWORD)."""

    url: str  # jdbc:postgresql://host:port/database[?sslmode=...]
    user: str
    secret_id: str | None = None
    secret_region: str | None = None


@dataclass(frozen=True)
class Args:
    assets: tuple[str, ...]
    raw: str  # as given, for the report
    lake: str
    report: str
    start: date | None
    end: date | None
    warehouse: WarehouseArgs | None = None

    @property
    def raw_uri(self) -> str:
        return to_hadoop_uri(self.raw)

    @property
    def lake_uri(self) -> str:
        return to_hadoop_uri(self.lake)

    @property
    def report_uri(self) -> str:
        return to_hadoop_uri(self.report)

    @property
    def days(self) -> list[date]:
        if self.start is None or self.end is None:
            return []
        return [self.start + timedelta(n) for n in range((self.end - self.start).days)]

    def reads(self, raw_input: str) -> bool:
        """Whether an asset of this run reads the raw input (song_data, log_data)."""
        return any(raw_input in graph.assets()[a].inputs for a in self.assets)


def to_hadoop_uri(uri: str) -> str:
    """Maps the accepted spellings onto what Hadoop's FileSystem resolves.

    `s3://` becomes `s3a://` because off EMR only the S3A connector exists (on EMR both work).
    Plain paths become absolute `file://` URIs so they never resolve against a cluster's
    default filesystem (HDFS) by accident.
    """
    m = _SCHEME_RE.match(uri)
    if m is None:
        uri = Path(os.path.abspath(uri)).as_uri()
    elif m.group(1).lower() == "s3":
        uri = "s3a://" + uri[len("s3://") :]
    # A trailing slash would double up when paths are joined.
    while uri.endswith("/") and not uri.endswith("://") and not uri.endswith(":///"):
        uri = uri[:-1]
    return uri


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would sys.exit(2); main() decides the exit
        raise ArgumentError(message)


def _parser() -> _Parser:
    p = _Parser(
        prog="run.py",
        description="Materialize Sparkify Lake assets (see docs/contracts.md).",
    )
    p.add_argument("--assets", required=True, help="comma-separated subset of " + ",".join(ASSETS))
    p.add_argument("--raw", required=True, help="root of song_data/ and log_data/")
    p.add_argument("--lake", required=True, help="root of the tables")
    p.add_argument("--start", help="first UTC day, YYYY-MM-DD (inclusive)")
    p.add_argument("--end", help="UTC day after the last, YYYY-MM-DD (exclusive)")
    p.add_argument("--report", required=True, help="where the JSON report is written")
    w = p.add_argument_group("warehouse (for the warehouse_* assets)")
    w.add_argument("--warehouse-url", help="jdbc:postgresql://host:port/database[?sslmode=require]")
    w.add_argument("--warehouse-user", help="the database user")
    w.add_argument(
        "--warehouse-secret-id",
        help="AWS Secrets Manager secret holding the password (else PGPASSWORD)",
    )
    w.add_argument("--warehouse-secret-region", help="region of that secret")
    return p


def _parse_date(name: str, value: str | None) -> date | None:
    if value is None:
        return None
    if not _DATE_RE.match(value):
        raise ArgumentError(f"argument {name}: expected YYYY-MM-DD, got {value!r}")
    try:
        day = date.fromisoformat(value)
    except ValueError as e:
        raise ArgumentError(f"argument {name}: {value!r} is not a calendar date ({e})") from None
    first, last = graph.day_bounds()
    # --end is exclusive, so it may be the day after the last partition.
    limit = date.fromisoformat(last) + timedelta(days=1 if name == "--end" else 0)
    if not date.fromisoformat(first) <= day <= limit:
        raise ArgumentError(f"argument {name}: {value} is outside {first}..{last}")
    return day


def _check_uri(name: str, value: str) -> str:
    if not value.strip():
        raise ArgumentError(f"argument {name}: empty")
    m = _SCHEME_RE.match(value)
    if m and m.group(1).lower() not in _SCHEMES:
        raise ArgumentError(
            f"argument {name}: unsupported scheme {m.group(1)!r} (use a path, "
            + ", ".join(s + "://" for s in _SCHEMES)
            + ")"
        )
    return value


def _warehouse(ns: argparse.Namespace, assets: tuple[str, ...]) -> WarehouseArgs | None:
    loading = [a for a in assets if graph.assets()[a].warehouse]
    if ns.warehouse_url is None:
        if loading:
            raise ArgumentError(f"argument --warehouse-url: required for {', '.join(loading)}")
        return None
    url = ns.warehouse_url
    if _CREDENTIAL_RE.search(url):
        raise ArgumentError(
            "argument --warehouse-url: carries a credential; the password comes from "
            "--warehouse-secret-id (AWS Secrets Manager) or PGPASSWORD in the environment"
        )
    if not _JDBC_RE.match(url):
        raise ArgumentError(
            f"argument --warehouse-url: expected jdbc:postgresql://host:port/database, got {url!r}"
        )
    if not ns.warehouse_user:
        raise ArgumentError("argument --warehouse-user: required with --warehouse-url")
    lake_assets = [a for a in assets if not graph.assets()[a].warehouse]
    if loading and lake_assets:
        # A load reads what the lake has published; in one run with the tables it reads, it
        # would load output that its own checks had not yet passed.
        raise ArgumentError(
            f"argument --assets: {', '.join(loading)} load the published lake; run them in their "
            f"own step, not with {', '.join(lake_assets)}"
        )
    return WarehouseArgs(url, ns.warehouse_user, ns.warehouse_secret_id, ns.warehouse_secret_region)


def parse_args(argv: list[str]) -> Args:
    ns = _parser().parse_args(argv)
    names = [a.strip() for a in ns.assets.split(",") if a.strip()]
    if not names:
        raise ArgumentError("argument --assets: no asset given")
    unknown = [a for a in names if a not in ASSETS]
    if unknown:
        raise ArgumentError(
            f"argument --assets: unknown asset(s) {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(ASSETS)})"
        )
    # The declaration's order (dependencies first): songplays' check sees this run's users.
    assets = tuple(a for a in ASSETS if a in names)
    start = _parse_date("--start", ns.start)
    end = _parse_date("--end", ns.end)
    daily = [a for a in assets if a in DAILY_ASSETS]
    if daily:
        for flag, value in (("--start", start), ("--end", end)):
            if value is None:
                raise ArgumentError(f"argument {flag}: required for {', '.join(daily)}")
    if (start is None) != (end is None):
        missing = "--end" if end is None else "--start"
        raise ArgumentError(f"argument {missing}: --start and --end go together")
    if start is not None and end is not None and end <= start:
        raise ArgumentError(f"argument --end: {end} must be after --start {start}")
    return Args(
        warehouse=_warehouse(ns, assets),
        assets=assets,
        raw=_check_uri("--raw", ns.raw),
        lake=_check_uri("--lake", ns.lake),
        report=_check_uri("--report", ns.report),
        start=start,
        end=end,
    )
