"""nexus-seed-genres <ini>: fill the genres table from the active movie source. Idempotent."""
from __future__ import annotations

import argparse
import sys

from ..movie_source import SourceUnavailable
from ..services.seeds import seed_genres
from .common import bootstrap_app, write_transaction


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config_uri")
    args = parser.parse_args(argv)
    with bootstrap_app(args.config_uri) as env:
        request = env["request"]
        try:
            with write_transaction(request):
                print(seed_genres(request))
        except SourceUnavailable as exc:
            sys.exit(f"error: the movie source is unavailable ({exc})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
