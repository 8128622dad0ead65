"""The job report (docs/contracts.md section 2), written through Hadoop FS."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sparkify_jobs.args import Args
from sparkify_jobs.checks import Check

REPORT_VERSION = 1


def utc_iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class AssetReport:
    rows: int = 0
    rows_per_day: dict[str, int] | None = None
    quarantined: dict[str, int] = field(default_factory=dict)
    duplicates_dropped: int = 0
    input_files: int = 0
    duration_s: float = 0.0
    checks: list[Check] = field(default_factory=list)
    # Where this asset's bad input lines went (each asset owns its quarantine path).
    quarantine_location: str | None = None
    # Asset-specific fields (users: state_mode, state_days_read, users_recomputed).
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "rows_per_day": self.rows_per_day,
            "quarantined": dict(sorted(self.quarantined.items())),
            "quarantine": {
                "rows": sum(self.quarantined.values()),
                "location": self.quarantine_location,
            },
            "duplicates_dropped": self.duplicates_dropped,
            "input_files": self.input_files,
            "duration_s": round(self.duration_s, 3),
            "checks": [c.to_json() for c in self.checks],
            **self.extra,
        }


def build(
    *,
    args: Args,
    status: str,
    spark_version: str | None,
    started: datetime,
    finished: datetime,
    quarantine: dict[str, Any],
    assets: dict[str, AssetReport],
    error: str | None = None,
) -> dict[str, Any]:
    failed = [
        {"asset": name, **c.to_json()}
        for name, a in assets.items()
        for c in a.checks
        if not c.passed
    ]
    out: dict[str, Any] = {
        "report_version": REPORT_VERSION,
        "status": status,
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
        "failed_checks": failed,
    }
    if error is not None:
        out["error"] = error
    return out


def dumps(report: dict[str, Any]) -> bytes:
    return (json.dumps(report, indent=2, sort_keys=False) + "\n").encode("utf-8")
