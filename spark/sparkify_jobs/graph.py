"""The asset declaration (assets/assets.json), as the Spark jobs read it.

The orchestrator (TypeScript) reads the same file, so which assets exist, how they are
partitioned, which step builds them and which checks block publishing is stated once. The code
bundle ships the file inside sparkify_jobs.zip; from a checkout it is read from assets/.
"""

from __future__ import annotations

import json
import pkgutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DECLARATION_FILE = "assets.json"


@dataclass(frozen=True)
class Asset:
    key: str
    partitioning: str  # "daily" | "unpartitioned"
    step: str
    deps: tuple[str, ...]
    inputs: tuple[str, ...]
    reads: tuple[str, ...]
    writes: tuple[tuple[str, str], ...]  # (path, scope) in the lake
    checks: tuple[tuple[str, bool], ...]  # (name, blocking)
    # The lake table as readers see it (none for warehouse assets: their schema is a migration).
    columns: tuple[tuple[str, str], ...]  # (name, type), partition columns included
    partition_by: tuple[str, ...]
    # Tables of the serving database the asset loads: (table, scope).
    loads: tuple[tuple[str, str], ...] = ()

    @property
    def daily(self) -> bool:
        return self.partitioning == "daily"

    @property
    def warehouse(self) -> bool:
        """Whether the asset loads the serving database (warehouse.py) instead of the lake."""
        return bool(self.loads)


def _load() -> dict[str, Any]:
    data = pkgutil.get_data("sparkify_jobs", DECLARATION_FILE)
    if data is None:  # pragma: no cover - get_data raises rather than returning None here
        raise FileNotFoundError(DECLARATION_FILE)
    return json.loads(data)


@cache
def declaration() -> dict[str, Any]:
    try:
        return _load()
    except (FileNotFoundError, OSError):
        # A checkout: the package sits in spark/, the declaration in assets/.
        here = Path(__file__).resolve().parent
        return json.loads((here.parents[1] / "assets" / DECLARATION_FILE).read_text())


@cache
def assets() -> dict[str, Asset]:
    out: dict[str, Asset] = {}
    for a in declaration()["assets"]:
        out[a["key"]] = Asset(
            key=a["key"],
            partitioning=a["partitioning"],
            step=a["step"],
            deps=tuple(a["deps"]),
            inputs=tuple(a["inputs"]),
            reads=tuple(a["reads"]),
            writes=tuple(
                (w["path"], w["scope"]) for w in a["writes"] if w.get("store", "lake") == "lake"
            ),
            checks=tuple((c["name"], bool(c["blocking"])) for c in a["checks"]),
            columns=tuple((c["name"], c["type"]) for c in a.get("table", {}).get("columns", [])),
            partition_by=tuple(a.get("table", {}).get("partitionBy", [])),
            loads=tuple(
                (w["path"], w["scope"]) for w in a["writes"] if w.get("store") == "warehouse"
            ),
        )
    return out


def order() -> tuple[str, ...]:
    """Declaration order, which lists every asset after its dependencies (the orchestrator
    checks the graph; a run of several assets builds them in this order)."""
    return tuple(assets())


def daily_assets() -> tuple[str, ...]:
    return tuple(k for k, a in assets().items() if a.daily)


def warehouse_assets() -> tuple[str, ...]:
    return tuple(k for k, a in assets().items() if a.warehouse)


def is_blocking(asset: str, check: str) -> bool:
    """Whether a failed `check` of `asset` keeps the output from being published. A check the
    declaration does not name is a programming error, not a warning."""
    for name, blocking in assets()[asset].checks:
        if name == check:
            return blocking
    raise KeyError(f"check {check!r} of {asset!r} is not declared in assets/{DECLARATION_FILE}")


def day_bounds() -> tuple[str, str]:
    daily = declaration()["partitions"]["daily"]
    return daily["first"], daily["last"]


def writer_of(path: str) -> str:
    """The asset whose step writes `path` (a lake path as declared in `writes`)."""
    for key, a in assets().items():
        if any(p == path for p, _ in a.writes):
            return key
    raise KeyError(f"{path!r} is not declared as written by any asset in assets/{DECLARATION_FILE}")
