"""nexus-initialize-db <ini>: migrate the database to the latest schema and seed it. Idempotent."""
from __future__ import annotations

import argparse
import logging
import sys

from alembic import command
from alembic.config import Config

from ..interfaces import IDatabaseEngine, ISeedSteps, find_service
from ..models.app_meta import check_movie_id_space
from ..settings import ConfigurationError
from .common import bootstrap_app, write_transaction

log = logging.getLogger(__name__)


def migrate(config_uri: str) -> None:
    alembic_cfg = Config(config_uri.split("#")[0])
    command.upgrade(alembic_cfg, "head")


def seed(env) -> None:
    """Seed steps registered by the features (e.g. genres from the movie source)."""
    from ..movie_source import SourceUnavailable

    request = env["request"]
    for name, step in request.find_service(ISeedSteps).items():
        try:
            with write_transaction(request):
                result = step(request)
        except SourceUnavailable as exc:
            # The schema is ready; only this seed waits for the movie source.
            log.warning("seed %s skipped: the movie source is unavailable (%s); run it again later", name, exc)
            continue
        log.info("seed %s: %s", name, result)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config_uri", help="the ini file, e.g. development.ini")
    args = parser.parse_args(argv)
    migrate(args.config_uri)
    with bootstrap_app(args.config_uri) as env:
        # The app's own start-up check lets an unreachable database pass; here it must not.
        registry = env["registry"]
        try:
            engine = find_service(registry, IDatabaseEngine)
            check_movie_id_space(engine, registry.settings["nexus.movie_source"], strict=True)
        except ConfigurationError as exc:
            sys.exit(f"error: {exc}")
        seed(env)
    print("database ready")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
