"""Sparkify Lake's Spark jobs: one module per asset, pure DataFrame transformations.

`cli.main(argv)` is the entrypoint `run.py` calls; nothing here imports pyspark at import time
so that argument errors are reported before a JVM starts. Which assets exist comes from the
declaration the orchestrator reads too (assets/assets.json, see graph.py).
"""

from sparkify_jobs import graph

ASSETS = graph.order()
# Assets partitioned by UTC day: they need a [start, end) range of days.
DAILY_ASSETS = graph.daily_assets()
