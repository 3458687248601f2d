"""Helpers shared by the console scripts."""
from __future__ import annotations

import sys

from pyramid.paster import bootstrap, setup_logging

from ..settings import ConfigurationError


def bootstrap_app(config_uri: str):
    """Load the app from an ini file; exit with a clear message if it cannot start."""
    setup_logging(config_uri)
    try:
        return bootstrap(config_uri)
    except ConfigurationError as exc:
        sys.exit(f"error: {exc}")
