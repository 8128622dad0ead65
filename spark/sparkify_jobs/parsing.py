"""Column helpers shared by the raw-data parsers: strict type checks with built-ins only.

Every cast is guarded by a regex first, so it can't fail under spark.sql.ansi.enabled and a
value that doesn't fit never turns into a NULL unnoticed.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

# Bounded digit counts keep casts from overflowing; 15 digits also keep epoch milliseconds
# within what timestamp_millis accepts (it throws, even without ANSI, beyond that).
_INT_DIGITS, _LONG_DIGITS = 9, 15
_INT_RE = rf"^-?[0-9]{{1,{_INT_DIGITS}}}$"
_LONG_RE = rf"^-?[0-9]{{1,{_LONG_DIGITS}}}$"
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


def fits_int(n: Column) -> Column:
    """Whether a parsed integer is one `is_int` accepts as text (JSON has no leading zeros)."""
    return n.between(-(10**_INT_DIGITS - 1), 10**_INT_DIGITS - 1)


def fits_long(n: Column) -> Column:
    """Whether a parsed integer is one `is_long` accepts as text."""
    return n.between(-(10**_LONG_DIGITS - 1), 10**_LONG_DIGITS - 1)


def is_finite(d: Column) -> Column:
    """Whether a parsed double is surely one `is_double` accepts as text: NaN or Infinity came
    from a token it rejects ("NaN", which Spark's parser allows) or from a huge number it
    accepts (1e400): only the text can tell."""
    return ~F.isnan(d) & (F.abs(d) != float("inf"))


def blank_to_null(c: Column) -> Column:
    """'' and whitespace-only strings mean "unknown" in the raw data: make that NULL."""
    return F.when(F.trim(c) != "", c)


def first_failure(*cases: tuple[Column, str]) -> Column:
    """The reason of the first condition that holds, else NULL (one reason per line)."""
    out = None
    for cond, reason in cases:
        out = F.when(cond, F.lit(reason)) if out is None else out.when(cond, F.lit(reason))
    return out
