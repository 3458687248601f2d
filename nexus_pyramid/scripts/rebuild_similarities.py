"""nexus-rebuild-similarities <ini>: recompute the recommender's co-occurrence neighbours.

Run it on a schedule (e.g. hourly from cron); recommendations keep working between runs
(new likes add new seeds at once; only the neighbour lists wait for the next run).
"""
from __future__ import annotations

import argparse
import sys
import time

from ..services.recommender import rebuild_similarities
from .common import bootstrap_app, write_transaction


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config_uri")
    args = parser.parse_args(argv)
    with bootstrap_app(args.config_uri) as env:
        request = env["request"]
        started = time.perf_counter()
        with write_transaction(request) as dbsession:
            count = rebuild_similarities(dbsession)
        print(f"{count} movie similarities in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
