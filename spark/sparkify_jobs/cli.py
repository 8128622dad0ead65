"""Entrypoint logic behind run.py: validate, build, check, publish, report, exit code
(docs/contracts.md)."""

from __future__ import annotations

import sys
import traceback
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from sparkify_jobs.args import ArgumentError, parse_args

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID_ARGS = 2
EXIT_CHECK_FAILED = 3


def main(argv: list[str] | None = None, spark: SparkSession | None = None) -> int:
    """Runs one job; returns the exit code. A given `spark` is used and left running."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parse_args(argv)
    except ArgumentError as e:
        print(f"run.py: error: {e}", file=sys.stderr)
        return EXIT_INVALID_ARGS
    except SystemExit as e:  # --help
        return int(e.code or 0)

    # pyspark is imported only now: argument errors above must not pay for (or need) a JVM.
    from sparkify_jobs import errors, report, session
    from sparkify_jobs.fs import HadoopFS
    from sparkify_jobs.runner import Run, log

    started = datetime.now(timezone.utc)
    own_session = spark is None
    if own_session:
        spark = session.create([args.raw_uri, args.lake_uri, args.report_uri])
    else:
        spark = session.configure(spark)
    run = Run(spark, args)
    status, code, error, keep = "succeeded", EXIT_OK, None, False
    try:
        for asset in args.assets:
            run.run_asset(asset)
        # Write, audit, publish, per asset: what passed its checks is published even when
        # another asset of the step failed (unless it depends on that one).
        decisions = run.decide()
        good = {a for a, why in decisions.items() if why is None}
        run.publish(good)
        for name, why in decisions.items():
            run.reports[name].published = why is None
            run.reports[name].not_published = why
        errored = [r.error for r in run.reports.values() if r.error is not None]
        if errored:
            status, code, error = "failed", EXIT_FAILED, errored[0]
        elif len(good) < len(decisions):
            status, code = "check_failed", EXIT_CHECK_FAILED
        # What failed its checks stays staged for inspection; its location is reported.
        keep = any(r.error is None and not r.published for r in run.reports.values())
    except Exception as e:
        traceback.print_exc()
        status, code, error = "failed", EXIT_FAILED, errors.root_cause(e)
    finally:
        try:
            run.close(keep_staging=keep)
        except Exception:
            traceback.print_exc()
    try:
        doc = report.build(
            args=args,
            status=status,
            staging=run.staging_location if keep else None,
            spark_version=spark.version,
            started=started,
            finished=datetime.now(timezone.utc),
            quarantine=run.quarantine,
            assets=run.reports,
            error=error,
        )
        HadoopFS(spark).write_bytes(args.report_uri, report.dumps(doc))
        log(f"{status}; report at {args.report}")
    except Exception:
        traceback.print_exc()
        code = EXIT_FAILED
    finally:
        if own_session:
            session.stop(spark)
    return code
