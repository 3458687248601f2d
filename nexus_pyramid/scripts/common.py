"""Helpers shared by the console scripts."""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager

import zope.sqlalchemy
from pyramid.paster import bootstrap, setup_logging

from ..settings import ConfigurationError


# Maintenance work (a similarity rebuild over a million interactions, a catalog load) runs
# for minutes: the web requests' statement timeout does not apply to it unless the operator
# sets one for the script (NEXUS__DB__STATEMENT_TIMEOUT).
SCRIPT_STATEMENT_TIMEOUT = "0"


def bootstrap_app(config_uri: str):
    """Load the app from an ini file; exit with a clear message if it cannot start."""
    setup_logging(config_uri)
    os.environ.setdefault("NEXUS__DB__STATEMENT_TIMEOUT", SCRIPT_STATEMENT_TIMEOUT)
    try:
        return bootstrap(config_uri)
    except ConfigurationError as exc:
        sys.exit(f"error: {exc}")


@contextmanager
def write_transaction(request):
    """One transaction that commits what the block wrote, or rolls it all back on an error.

    The request's session is joined to pyramid_tm through zope.sqlalchemy, which commits a
    session only when it knows the session wrote: ORM flushes and ORM statements tell it,
    but Core statements on tables and ``text()`` SQL do not, and their work is silently
    rolled back at "commit". Scripts write in bulk, so they say it explicitly.
    """
    with request.tm:
        yield request.dbsession
        zope.sqlalchemy.mark_changed(request.dbsession, transaction_manager=request.tm)
