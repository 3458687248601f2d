"""What the web processes hold in memory, and what the master loads for the workers to share.

``pserve production.ini`` builds the application once, in gunicorn's master; the workers are
forked from it and share its pages copy-on-write. Measured with bench/production.py,
``/proc/<pid>/smaps`` and ``/proc/<pid>/pagemap`` (2 workers, 12 threads each, Python 3.11):

- The master holds about 70 MB of Python heap (obmalloc arenas and the malloc heap), most of
  it module code and objects (SQLAlchemy alone some 18 MB, redis-py 6 MB). A worker that has
  served the bench's routes has its own copy of about 30 MB of it (some 40%). The copied
  pages are spread over the whole heap and over every kind of object (str, code, dict,
  type, function): reference counts written by every object a request touches (nearly a third of
  the copied pages end the load byte for byte equal to the master's: a count went up and
  down), code objects specialised on their first calls, and state each route builds on its
  first use. gc.freeze (``warm_up``) keeps the collector out of it; reference counts cannot
  be, before Python 3.12's immortal objects. So a megabyte loaded at start-up costs up to
  1.8 MB across master + 2 workers once they serve, while a module nothing calls stays
  shared: what a web process never needs should not be imported by it.
- Memory that is new in a worker after the fork is about 4 MB: glibc's per-thread malloc
  arenas are not where it goes (``MALLOC_ARENA_MAX=2`` moved the total by less than the
  noise between runs, so there is no setting for it); nor are the free blocks the master
  leaves in its heap for the workers to reuse (filling them before the fork: no change).
- numpy (about 20 MB resident: 8.5 MB of heap, the rest its libraries, OpenBLAS included)
  serves only the trained recommender model's fold-in. It is imported where it is used
  (recommender_model.py, services/recommender.py), so a deployment without a trained model
  never loads it; ``share_numpy`` imports it in the master when a model is stored, so that
  the workers share numpy instead of each importing its own at its first recommendation.
  tests/unit/test_web_imports.py guards both.
"""
from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session


log = logging.getLogger(__name__)


def share_numpy(engine) -> bool:
    """If a trained model is stored, import numpy now, in the master, for the workers to share.

    The model itself is left to each worker (``ModelHolder`` loads it at its first
    recommendation): the hourly retraining replaces it in every worker, and a copy loaded here
    would stay in the master, unshared, for the rest of its life. Without a stored model
    nothing is imported. A database that cannot be read here leaves numpy to the workers.
    True if numpy was imported.
    """
    from .models import RecommenderModel

    try:
        with Session(engine) as session:
            stored = session.execute(select(RecommenderModel.version).limit(1)).first() is not None
    except Exception as exc:  # noqa: BLE001 (start-up goes on: the workers import numpy themselves)
        log.warning("trained model: not looked for at start-up (%s)", type(exc).__name__)
        return False
    if stored:
        import numpy  # noqa: F401

    return stored
