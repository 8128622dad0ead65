"""The job report, written through Hadoop FS. Its schema is stated once, in TypeScript
(lake/report.ts, generated to docs/job-report.schema.json); the tests validate every report the
jobs write against that file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sparkify_jobs.args import Args
from sparkify_jobs.checks import Check

REPORT_VERSION = 2


def utc_iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class AssetReport:
    rows: int = 0
    rows_per_day: dict[str, int] | None = None
    table_rows: int | None = None
    data_version: str | None = None
    data_versions: dict[str, str] | None = None
    quarantined: dict[str, int] = field(default_factory=dict)
    duplicates_dropped: int = 0
    input_files: int = 0
    duration_s: float = 0.0
    checks: list[Check] = field(default_factory=list)
    # Where this asset's bad input lines went (each asset owns its quarantine path).
    quarantine_location: str | None = None
    # Asset-specific facts (users: state_mode, state_days_read, users_recomputed).
    details: dict[str, Any] = field(default_factory=dict)
    # Whether this asset's output was moved where readers look, and if not, why.
    published: bool = False
    not_published: str | None = None
    error: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "rows_per_day": self.rows_per_day,
            "table_rows": self.table_rows,
            "data_version": self.data_version,
            "data_versions": self.data_versions,
            "quarantined": dict(sorted(self.quarantined.items())),
            "quarantine": {
                "rows": sum(self.quarantined.values()),
                "location": self.quarantine_location,
            },
            "duplicates_dropped": self.duplicates_dropped,
            "input_files": self.input_files,
            "duration_s": round(self.duration_s, 3),
            "checks": [c.to_json() for c in self.checks],
            "details": self.details,
            "published": self.published,
            "not_published": self.not_published,
            "error": self.error,
        }


def build(
    *,
    args: Args,
    status: str,
    staging: str | None,
    spark_version: str | None,
    started: datetime,
    finished: datetime,
    quarantine: dict[str, Any],
    assets: dict[str, AssetReport],
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    def failed(blocking: bool) -> list[dict[str, Any]]:
        return [
            {"asset": name, **c.to_json()}
            for name, a in assets.items()
            for c in a.checks
            if not c.passed and c.blocking == blocking
        ]

    return {
        "report_version": REPORT_VERSION,
        "status": status,
        "published": bool(assets) and all(a.published for a in assets.values()),
        "staging": staging,
        "spark_version": spark_version,
        "started_at": utc_iso(started),
        "finished_at": utc_iso(finished),
        "duration_s": round((finished - started).total_seconds(), 3),
        "args": {
            "assets": list(args.assets),
            "raw": args.raw,
            "lake": args.lake,
            "start": args.start.isoformat() if args.start else None,
            "end": args.end.isoformat() if args.end else None,
        },
        "quarantine": quarantine,
        "assets": {name: a.to_json() for name, a in assets.items()},
        "failed_checks": failed(True),
        "warnings": failed(False),
        "error": error,
    }


def dumps(report: dict[str, Any]) -> bytes:
    return (json.dumps(report, indent=2, sort_keys=False, default=str) + "\n").encode("utf-8")
