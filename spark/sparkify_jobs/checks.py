"""Data checks and content digests, computed on what a run is about to publish.

Whether a failed check blocks publishing is not decided here: the asset declaration says so
(graph.is_blocking), and a check it does not declare is an error.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import Column, DataFrame, Observation, Window
from pyspark.sql import functions as F

from sparkify_jobs import graph

SAMPLE_SIZE = 5
# Non-blocking quarantine checks warn above this share of the input's lines.
QUARANTINE_WARN_SHARE = 0.01


@dataclass
class Check:
    name: str
    passed: bool
    blocking: bool
    failing_count: int
    sample: list[Any] = field(default_factory=list)
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "passed": self.passed,
            "blocking": self.blocking,
            "failing_count": self.failing_count,
            "sample": self.sample,
        }
        if self.message is not None:
            out["message"] = self.message
        return out


def check(
    asset: str, name: str, failing: int, sample: Sequence[Any] = (), message: str | None = None
) -> Check:
    return Check(name, failing == 0, graph.is_blocking(asset, name), failing, list(sample), message)


def version(rows: int, digest: int) -> str:
    """A partition's data version: same rows, same version, in any order and on any run."""
    return hashlib.sha256(f"{rows}:{digest}".encode()).hexdigest()[:16]


@dataclass
class Profile:
    """One pass over a table about to be published: rows and a content digest per group, and
    how many keys are NULL or repeated."""

    rows: dict[tuple, int]
    versions: dict[tuple, str]
    nulls: int
    dups: int
    dup_sample: list[Any]


def profile(df: DataFrame, key: str, columns: Sequence[str], by: Sequence[str] = ()) -> Profile:
    """`by` must be a function of the key (e.g. the day of a start_time), else a key repeated
    across groups would escape the duplicate count."""
    row_hash = _row_hash(columns)
    per_key = df.groupBy(key, *by).agg(F.count(F.lit(1)).alias("_n"), F.sum(row_hash).alias("_h"))
    is_null, is_dup = F.col(key).isNull(), F.col(key).isNotNull() & (F.col("_n") > 1)
    groups = (
        per_key.groupBy(*by)
        .agg(
            F.sum("_n").alias("rows"),
            F.sum("_h").alias("digest"),
            F.coalesce(F.sum(F.when(is_null, F.col("_n"))), F.lit(0)).alias("nulls"),
            F.count(F.when(is_dup, F.lit(1))).alias("dups"),
        )
        .collect()
    )
    # A global aggregate of nothing is one row of NULLs: that is an empty table, not a group.
    groups = [g for g in groups if g["rows"] is not None]
    rows = {tuple(g[c] for c in by): int(g["rows"]) for g in groups}
    versions = {
        tuple(g[c] for c in by): version(int(g["rows"]), int(g["digest"] or 0)) for g in groups
    }
    dups = sum(int(g["dups"]) for g in groups)
    sample = (
        [r[0] for r in per_key.where(is_dup).select(key).orderBy(key).limit(SAMPLE_SIZE).collect()]
        if dups
        else []
    )
    return Profile(rows, versions, sum(int(g["nulls"]) for g in groups), dups, sample)


def _row_hash(columns: Sequence[str]) -> F.Column:
    # An order-independent digest: the sum of each row's 64-bit hash, exact in a decimal.
    return F.xxhash64(*[F.col(c) for c in columns]).cast("decimal(38,0)")


class Audit:
    """`profile`, measured by the write of the table itself instead of a job of its own.

    `apply` goes into the write's plan after the rows are clustered by `by` (one partition
    per group or several groups per partition; one partition in all when `by` is empty) and
    before they are sorted for the files: two window passes over each group, sorted by the
    key, count its rows, sum its digest and flag each key that repeats (a duplicate sorts
    next to its first occurrence); `DataFrame.observe` hands the totals to the driver when
    the write finishes, and the helper columns are dropped before anything is written. The
    metrics are taken in the write's last stage, whose updates Spark applies once per
    partition whatever a task's retries. `by` must be a function of the key (as for
    `profile`), else a key repeated across groups would escape the duplicate count.
    """

    def __init__(self, key: str, columns: Sequence[str], by: Sequence[str] = ()):
        self.key, self.columns, self.by = key, tuple(columns), tuple(by)
        self._obs: Observation | None = None
        self._df: DataFrame | None = None

    def apply(self, df: DataFrame) -> DataFrame:
        key = F.col(self.key)
        group = Window.partitionBy(*self.by).rowsBetween(
            Window.unboundedPreceding, Window.unboundedFollowing
        )
        ordered = Window.partitionBy(*self.by).orderBy(self.key)
        prev, prev2 = F.lag(key, 1).over(ordered), F.lag(key, 2).over(ordered)
        # The first repeat of a key: a key twice or more counts once, as in `profile`.
        first_repeat = F.coalesce((prev == key) & ~prev2.eqNullSafe(key), F.lit(False))
        marked = df.select(
            "*",
            F.count(F.lit(1)).over(group).alias("_audit_n"),
            F.sum(_row_hash(self.columns)).over(group).alias("_audit_h"),
            F.row_number().over(ordered).alias("_audit_rn"),
            first_repeat.alias("_audit_dup"),
        )
        group_row = F.struct(
            *self.by, F.col("_audit_n").alias("n"), F.col("_audit_h").cast("string").alias("h")
        )
        self._obs = Observation()
        # One metric, a JSON document: read back with one py4j call (see `profile`).
        metrics = F.struct(
            F.count(F.when(key.isNull(), F.lit(1))).alias("nulls"),
            F.count(F.when(F.col("_audit_dup"), F.lit(1))).alias("dups"),
            # One entry per group (a day, or the table): a few hundred at most.
            F.collect_list(F.when(F.col("_audit_rn") == 1, group_row)).alias("groups"),
        )
        observed = marked.observe(self._obs, F.to_json(metrics).alias("metrics"))
        self._df = df
        return observed.drop("_audit_n", "_audit_h", "_audit_rn", "_audit_dup")

    def profile(self) -> Profile:
        """The profile of what the write wrote; empty when nothing was written. A failed
        uniqueness check samples its keys with a query of its own: the only job an audit can
        cost, and only on failure."""
        if self._obs is None:
            return Profile({}, {}, 0, 0, [])
        # Observation.get iterates the Java map over py4j and ends on an exception that pyspark
        # inspects against a dozen classes: ~65 round trips. The one entry is read directly.
        m = json.loads(self._obs._jo.getAsJava().get("metrics"))
        groups = m["groups"] or []
        rows = {tuple(g[c] for c in self.by): int(g["n"]) for g in groups}
        versions = {
            tuple(g[c] for c in self.by): version(int(g["n"]), int(g["h"] or 0)) for g in groups
        }
        dups = int(m["dups"])
        sample: list[Any] = []
        if dups:
            sample = [
                r[0]
                for r in self._df.where(F.col(self.key).isNotNull())
                .groupBy(self.key)
                .count()
                .where("count > 1")
                .select(self.key)
                .orderBy(self.key)
                .limit(SAMPLE_SIZE)
                .collect()
            ]
        return Profile(rows, versions, int(m["nulls"]), dups, sample)


def key_checks(asset: str, table: str, key: str, p: Profile) -> list[Check]:
    return [
        check(asset, f"{table}.{key} unique", p.dups, p.dup_sample),
        check(asset, f"{table}.{key} not null", p.nulls),
    ]


def _counts_and_samples_aggs(col: str, conds: dict[str, Column]) -> list[Column]:
    return [
        agg
        for name, cond in conds.items()
        for agg in (
            F.count(F.when(cond, F.lit(1))).alias(f"{name}_n"),
            F.slice(F.sort_array(F.collect_list(F.when(cond, F.col(col)))), 1, SAMPLE_SIZE).alias(
                f"{name}_sample"
            ),
        )
    ]


def _counts_and_samples_of(row: Any, conds: dict[str, Column]) -> dict[str, tuple[int, list[Any]]]:
    return {
        name: (int(row[f"{name}_n"]), list(row[f"{name}_sample"] or [])) if row else (0, [])
        for name in conds
    }


def count_and_sample(df: DataFrame, col: str) -> tuple[int, list[Any]]:
    """How many rows, and the smallest few values of `col`, in one job."""
    conds = {"all": F.lit(True)}
    row = df.agg(*_counts_and_samples_aggs(col, conds)).first()
    return _counts_and_samples_of(row, conds)["all"]


class ObservedCounts:
    """How many of the rows `where` selects, and of each named subset of those, and the
    smallest few values of `col` (as `count_and_sample`), measured by the write of a table whose
    plan passes the rows (before it filters them out) instead of a job of its own. As with
    `Audit`, `apply` must go into the write's last stage (no shuffle after it), whose metric
    updates Spark applies once per partition."""

    def __init__(self, col: str, where: Column, **subsets: Column):
        self.col, self.where = col, where
        self.conds = {"all": F.lit(True), **subsets}
        self._obs: Observation | None = None

    def apply(self, df: DataFrame) -> DataFrame:
        self._obs = Observation()
        conds = {name: self.where & cond for name, cond in self.conds.items()}
        metrics = F.struct(*_counts_and_samples_aggs(self.col, conds))
        return df.observe(self._obs, F.to_json(metrics).alias("metrics"))

    def result(self) -> dict[str, tuple[int, list[Any]]]:
        """After the write; read with one py4j call, as `Audit.profile`."""
        if self._obs is None:
            raise RuntimeError("ObservedCounts.result before any write applied it")
        return _counts_and_samples_of(
            json.loads(self._obs._jo.getAsJava().get("metrics")), self.conds
        )


def references(
    asset: str,
    name: str,
    df: DataFrame,
    col: str,
    ref: DataFrame | None,
    ref_col: str,
    missing_ref: str,
    orphans_found: str,
) -> Check:
    """Every non-null `col` of df is a `ref_col` of ref. `ref` None means the referenced table
    does not exist: the check fails with `missing_ref` as its message; orphans get
    `orphans_found` (both say what to do)."""
    keys = df.where(F.col(col).isNotNull()).select(col).distinct()
    if ref is None:
        n, sample = count_and_sample(keys, col)
        return check(asset, name, n, sample, missing_ref)
    # A sort-merge join, not a broadcast: broadcasting `ref` would cost a Spark job of its own.
    orphans = keys.join(ref.select(F.col(ref_col).alias(col)).hint("merge"), col, "left_anti")
    n, sample = count_and_sample(orphans, col)
    return check(asset, name, n, sample, orphans_found if n else None)


def quarantine_share(
    asset: str, name: str, quarantined: int, total: int, location: str | None
) -> Check:
    """Non-blocking: warns when more than 1% of the input's lines were quarantined."""
    share = quarantined / total if total else 0.0
    failing = quarantined if share > QUARANTINE_WARN_SHARE else 0
    message = (
        f"{quarantined:,} of {total:,} input lines ({share:.1%}) quarantined at {location}"
        if failing
        else None
    )
    return check(asset, name, failing, [], message)
