"""Sparkify Lake's Spark jobs: one module per asset, pure DataFrame transformations.

`cli.main(argv)` is the entrypoint `run.py` calls; nothing here imports pyspark at import time
so that argument errors are reported before a JVM starts.
"""

ASSETS = ("songs", "artists", "users", "time", "songplays")
# Assets built from log_data: they need a [start, end) range of days.
DAILY_ASSETS = ("users", "time", "songplays")
