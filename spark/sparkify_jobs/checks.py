"""Data checks run on what a run writes; cheap aggregations, samples only on failure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

SAMPLE_SIZE = 5


@dataclass
class Check:
    name: str
    passed: bool
    failing_count: int
    sample: list[Any] = field(default_factory=list)
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if out["message"] is None:
            del out["message"]
        return out


def _sample(df: DataFrame, col: str) -> list[Any]:
    return [r[0] for r in df.select(col).orderBy(col).limit(SAMPLE_SIZE).collect()]


def key_checks(
    df: DataFrame, table: str, key: str, by: Sequence[str] = ()
) -> tuple[dict[tuple, int], list[Check]]:
    """`<table>.<key> unique` and `<table>.<key> not null` in one pass, which also yields the
    row count per `by` group (no separate count()). `by` must be a function of the key (e.g.
    the day of a start_time), else a key repeated across groups would escape the check."""
    per_key = df.groupBy(key, *by).agg(F.count(F.lit(1)).alias("_n"))
    is_null, is_dup = F.col(key).isNull(), F.col(key).isNotNull() & (F.col("_n") > 1)
    groups = (
        per_key.groupBy(*by)
        .agg(
            F.sum("_n").alias("rows"),
            F.coalesce(F.sum(F.when(is_null, F.col("_n"))), F.lit(0)).alias("nulls"),
            F.count(F.when(is_dup, F.lit(1))).alias("dups"),
        )
        .collect()
    )
    rows = {tuple(g[c] for c in by): int(g["rows"]) for g in groups}
    nulls = sum(int(g["nulls"]) for g in groups)
    dups = sum(int(g["dups"]) for g in groups)
    unique = Check(
        f"{table}.{key} unique",
        dups == 0,
        dups,
        _sample(per_key.where(is_dup), key) if dups else [],
    )
    not_null = Check(f"{table}.{key} not null", nulls == 0, nulls)
    return rows, [unique, not_null]


def references(
    df: DataFrame, col: str, ref: DataFrame | None, ref_col: str, name: str, missing_ref: str
) -> Check:
    """Every non-null `col` of df is a `ref_col` of ref; `ref` None means the referenced table
    doesn't exist, which fails the check with `missing_ref` as the message."""
    keys = df.where(F.col(col).isNotNull()).select(col).distinct()
    if ref is None:
        return Check(name, False, keys.count(), _sample(keys, col), missing_ref)
    orphans = keys.join(ref.select(F.col(ref_col).alias(col)), col, "left_anti")
    n = orphans.count()
    return Check(name, n == 0, n, _sample(orphans, col) if n else [])
