"""The S3A connector off EMR (dev/emr-local/s3a-jars.json, cached by scripts/setup-s3a): the jars
the local EMR puts on its drivers' classpath, here for the test session's own Spark."""

from __future__ import annotations

import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
S3A = json.loads((REPO / "dev" / "emr-local" / "s3a-jars.json").read_text())


def s3a_jars() -> list[Path] | None:
    """The cached jars, or None when set-up has not cached them all."""
    cache = os.environ.get("SPARKIFY_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sparkify-lake"
    )
    jars = [Path(cache) / "jars" / f"{j['artifact']}-{j['version']}.jar" for j in S3A["jars"]]
    return jars if all(j.is_file() for j in jars) else None
