"""spark-submit entrypoint of Sparkify Lake's Spark jobs; the contract is docs/contracts.md.

spark-submit [--py-files sparkify_jobs.zip] run.py --assets songs,artists,users,time,songplays
    --raw <uri> --lake <uri> [--start YYYY-MM-DD --end YYYY-MM-DD] --report <uri>
"""

import os
import sys


def _main():
    try:
        from sparkify_jobs.cli import main
    except ImportError:
        # Not shipped through --py-files: use the package sitting beside this file.
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from sparkify_jobs.cli import main
    return main


if __name__ == "__main__":
    sys.exit(_main()(sys.argv[1:]))
