"""Column helpers shared by the raw-data parsers: strict type checks with built-ins only.

Every cast is guarded by a regex first, so it can't fail under spark.sql.ansi.enabled and a
value that doesn't fit never turns into a NULL unnoticed.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

# Bounded digit counts keep casts from overflowing; 15 digits also keep epoch milliseconds
# within what timestamp_millis accepts (it throws, even without ANSI, beyond that).
_INT_RE = r"^-?[0-9]{1,9}$"
_LONG_RE = r"^-?[0-9]{1,15}$"
_DOUBLE_RE = r"^-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$"


def is_int(c: Column) -> Column:
    return c.rlike(_INT_RE)


def is_long(c: Column) -> Column:
    return c.rlike(_LONG_RE)


def is_double(c: Column) -> Column:
    return c.rlike(_DOUBLE_RE)


def as_int(c: Column) -> Column:
    return F.when(is_int(c), c.cast("int"))


def as_long(c: Column) -> Column:
    return F.when(is_long(c), c.cast("long"))


def as_double(c: Column) -> Column:
    return F.when(is_double(c), c.cast("double"))


def blank_to_null(c: Column) -> Column:
    """'' and whitespace-only strings mean "unknown" in the raw data: make that NULL."""
    return F.when(F.trim(c) != "", c)


def first_failure(*cases: tuple[Column, str]) -> Column:
    """The reason of the first condition that holds, else NULL (one reason per line)."""
    out = None
    for cond, reason in cases:
        out = F.when(cond, F.lit(reason)) if out is None else out.when(cond, F.lit(reason))
    return out
