"""What the web processes hold in memory, and what the master loads for the workers to share.

``pserve production.ini`` builds the application once, in gunicorn's master; the workers are
forked from it and share its pages copy-on-write. Measured with bench/production.py,
bench/pss.py (one server, per-process figures and where a worker's private pages are),
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
- bench/pss.py, after its load (medians of 3 to 5 interleaved rounds): master 44 MB, workers
  46 MB each, 137 MB in all (97 MB just booted). A worker's private pages are some 25 MB in
  mappings it inherited (20 MB in the anonymous ones that hold obmalloc's arenas, 5 MB in the
  malloc heap) and 3 to 5 MB in mappings of its own. The copy is what each code path writes
  the first time it runs, not growth: a forked copy of the app serving requests one at a time
  copied about 5 MB at its first /healthz (router, tweens, transaction, logging: some 260
  functions with 0.1 MB of code; pages are copied, not bytes), 9 MB at its first trending
  pages (fetched once, then cached), 7 MB at its first registration, and under 1 MB for 50
  more requests of a path it had already run.
- Memory that is new in a worker after the fork is 3 to 5 MB, most of it from the threads that
  serve at once (stacks, malloc arenas, the objects of the requests in flight): with 6 or 4
  waitress threads instead of 12 the total was 6 to 7 MB lower. The thread count is
  production.ini's margin for requests waiting on a hung database, so it stays at 12.
- Tried without effect (none lower than the same run's baseline by more than 1.5 MB, the
  noise between rounds): ``gc.freeze()`` in gunicorn's ``pre_fork`` hook with no
  ``gc.collect()`` in the worker; glibc settings (``MALLOC_ARENA_MAX`` 1 or 2, ``MALLOC_MMAP_THRESHOLD_`` and
  ``MALLOC_TRIM_THRESHOLD_`` at 64 or 128 KiB); importing in the master the modules a worker
  imports later (``email.policy`` and the rest for a first mail, ``netrc`` for requests);
  ``malloc_trim`` (the master's malloc heap has 1.2 MB free of 21 MB: nothing to return);
  filling the free blocks the master leaves in its heap before the fork.
  ``MALLOC_ARENA_MAX=1`` made it 5 MB larger, ``PYTHONMALLOC=malloc`` 29 MB.
- Tried and not kept (2026-12-01, on 696a035): Linux's same-page merging (KSM). The master
  opted in before the fork (``prctl(PR_SET_MEMORY_MERGE)``, inherited by the workers) on a
  host where ``/sys/kernel/mm/ksm/run`` was set to 1. ksmd merged some 3,400 pages (13 MB
  shared by 6,500 mappings) within 30 s of the load: 122-126 MB at rest against 135-146 MB
  for the same server without it, 130-133 MB while wrk drove it (hot pages are copied again
  by the next request that touches them), for 3 to 4.5 % of a core spent by ksmd. Still
  above 120 MB; and it works only where the host's administrator runs ksmd, which also lets
  processes of other tenants that opted in share pages with ours (a known timing side
  channel). Not shipped.
- Two small things, each below what PSS can tell between runs: the upserts import their
  dialect's ``insert`` when they run (``models.meta.dialect_insert``), so a PostgreSQL process
  does not load SQLAlchemy's SQLite dialect (0.6 MB less heap in the master); the mail
  templates are compiled when the mailer is built, in the master (``mail.Mailer``), so a
  worker's first registration copies 6.5 MB instead of 7.3 (the forked copy above, two runs).
  Likewise ``warm_up`` clears ``linecache``: Pyramid's configuration reads the source of each
  module that makes a config call (some 50 files, about 1 MB of heap) for messages that keep
  their own copies of the lines.
- The master rehearses (``rehearse``, called by ``server.serve`` before gunicorn forks): it
  serves /healthz, a profile read whose token names nobody (401), the cached movie pages
  from the cache only and a path that is no route, 20 times each, then freezes what that
  built. Code specialised and state built at first use are then the master's, shared.
  bench/pss.py, 3 interleaved rounds: 132.2 MB in all against 136.5 with ``NEXUS_REHEARSAL=false``
  (median; a worker's private pages 26.4 against 28.9 MB); on a later machine (2026-12-01),
  136.1 against 139.7 MB, and on the next (2026-12-01, fac9d81) 135.4 against 138.8 MB.
  A throwaway variant that also
  signed in a real user and read its profile in the master measured some 131 MB in the same
  bench: the read's own path (its preferences, the success envelope) would need a user's
  token minted at start-up, which the rehearsal does not do.
- A process that serves recommendations keeps what its pages read of movies for a minute
  (``services.movies.KeptMovies``): after bench/recs_latency.py's 300 cold pages at
  10,000 movies, 2.5 MiB of ranking data (5,430 movies) and 1.5 MiB of the picks' Movie
  dicts (1,238); bounded at 10,000 and 3,000 entries, some 4.5 and 3.5 MiB. The production
  bench's routes never fill them.
- numpy (about 20 MB resident: 8.5 MB of heap, the rest its libraries, OpenBLAS included)
  serves only the trained recommender model's fold-in. It is imported where it is used
  (recommender_model.py, services/recommender.py), so a deployment without a trained model
  never loads it; ``share_numpy`` imports it in the master when a model is stored, so that
  the workers share numpy instead of each importing its own at its first recommendation.
  tests/unit/test_web_imports.py guards both.
"""
from __future__ import annotations

import logging
import time

from sqlalchemy import select
from sqlalchemy.orm import Session


log = logging.getLogger(__name__)
startup_log = logging.getLogger("nexus.startup")  # production.ini shows nexus.* at INFO


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


# -- the master's rehearsal ------------------------------------------------------------------
# What a worker serves most, none of it calling out: the liveness probe; an authenticated read
# whose token names nobody (the security policy, the database session and one statement, the
# error envelope); the cached movie pages, from the cache only; a path that is no route.
REHEARSAL_TIMES = 20
# No new round starts after this many seconds: a database that answers, but slowly, does not
# hold start-up for 20 of its statement timeouts. (Some 0.1 s is what a rehearsal takes.)
REHEARSAL_BUDGET = 5.0
REHEARSAL_ADDRESS = "127.0.0.1"


def rehearse(app, times: int = REHEARSAL_TIMES, budget: float = REHEARSAL_BUDGET) -> dict[str, int]:
    """Serve a few requests in the master, before the workers fork: {path: last status}.

    A worker's first requests write to much of the heap it shares with the master: the
    bytecode that CPython specialises on a code object's first calls, the state routes build
    at first use (compiled statements, route matches, renderers). Made here, once, those
    pages stay shared; each worker would otherwise copy them. Nothing calls out but to the
    database (one statement that finds no row) and the shared cache: TMDb is never asked
    (``answering_from_cache_only``): a cold page answers 503 here and is left for the
    workers. A path that answers 500 or more (a cold page; the database or Redis down at
    start-up, each then waited for once, within its timeouts) is not asked again, and no round
    starts after ``budget`` seconds. No access line, no metrics, no connection kept; the
    cache counts start from zero in the workers.
    """
    import gc
    import uuid

    from webob import Request

    from . import metrics
    from .interfaces import IDatabaseEngine, IMovieSource, ITokenCodec, find_service
    from .movie_source.base import answering_from_cache_only
    from .services.tokens import ACCESS_TOKEN_TYPE

    registry = app.registry
    nobody = find_service(registry, ITokenCodec).create_token(str(uuid.uuid4()), typ=ACCESS_TOKEN_TYPE, ver=0,
                                                              sid=str(uuid.uuid4()))
    paths = (("/healthz", {}), ("/api/user/profile", {"Authorization": f"Bearer {nobody}"}),
             ("/api/movies/trending", {}), ("/api/genres", {}), ("/api/no-such-route", {}))
    statuses: dict[str, int] = {}
    access_log = logging.getLogger("nexus.access")
    kept_metrics, kept_disabled = metrics.METRICS, access_log.disabled
    metrics.METRICS, access_log.disabled = None, True
    started = time.perf_counter()
    try:
        with answering_from_cache_only():
            for number in range(times):
                if number and time.perf_counter() - started > budget:
                    break
                for path, headers in paths:
                    if statuses.get(path, 0) >= 500:
                        continue
                    request = Request.blank(path, headers=headers, environ={"REMOTE_ADDR": REHEARSAL_ADDRESS})
                    statuses[path] = request.get_response(app).status_int
    except Exception as exc:  # noqa: BLE001 (an optimisation: start-up goes on without it)
        startup_log.warning("start-up rehearsal: stopped by %s; the workers start all the same", type(exc).__name__)
    finally:
        metrics.METRICS, access_log.disabled = kept_metrics, kept_disabled
        source = find_service(registry, IMovieSource)
        if hasattr(source, "stats"):
            source.stats.reset()
        find_service(registry, IDatabaseEngine).dispose()
    if registry.settings.get("nexus.gc_freeze"):
        gc.collect()
        gc.freeze()
    startup_log.info("start-up rehearsal: %s in %.0f ms", ", ".join(f"{p} {s}" for p, s in statuses.items()),
                     (time.perf_counter() - started) * 1000)
    return statuses
