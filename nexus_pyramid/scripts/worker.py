"""nexus-worker <ini> [--burst]: run queued jobs (RQ on Redis) and the periodic retraining.

Start one or more beside the web workers (docker-compose.yml's ``worker``). Each runs one
job at a time, in its own process (RQ's SimpleWorker: no fork per job, so the app's
database pool and loaded settings serve every job). ``--burst`` runs what is queued, then
exits. With ``recommender.retrain_interval`` > 0, the worker queues a training that often;
a Redis key (SET NX with that expiry) makes one worker among many do it.
"""
from __future__ import annotations

import argparse
import logging
import sys
import threading

import redis as redis_py

from .common import bootstrap_app

log = logging.getLogger(__name__)
_REGISTRY = None
SCHEDULE_KEY = "nexus:jobs:retrain-due"


def worker_registry():
    if _REGISTRY is None:
        raise RuntimeError("jobs run inside nexus-worker (or jobs.mode = sync)")
    return _REGISTRY


def schedule_training(registry, client) -> bool:
    """Queue a training if none was queued within the interval (by any worker). True if queued."""
    interval = registry.settings["recommender.retrain_interval"]
    if not interval or not client.set(SCHEDULE_KEY, "1", nx=True, ex=int(interval)):
        return False
    from .jobs_cli import start_job

    start_job(registry, "train_recommender")
    return True


def fail_abandoned_jobs(registry) -> None:
    """Fail the jobs whose worker died mid-run: RQ stops a job at ``jobs.timeout``, so one still
    ``running`` a minute past that has no worker left."""
    from ..interfaces import IDBSessionFactory, find_service
    from ..jobs.runner import fail_abandoned

    try:
        count = fail_abandoned(find_service(registry, IDBSessionFactory), registry.settings["jobs.timeout"] + 60)
    except Exception:  # noqa: BLE001 (the next round tries again)
        log.warning("abandoned jobs not checked", exc_info=True)
        return
    if count:
        log.warning("%d job(s) abandoned by a stopped worker marked failed", count)


def _scheduler(registry, client, stop: threading.Event) -> None:
    interval = registry.settings["recommender.retrain_interval"] or 600
    while not stop.wait(min(60.0, max(1.0, interval / 10.0))):
        fail_abandoned_jobs(registry)
        try:
            schedule_training(registry, client)
        except Exception:  # noqa: BLE001 (the next round tries again)
            log.warning("periodic training not queued", exc_info=True)


def main(argv=None):
    global _REGISTRY
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config_uri")
    parser.add_argument("--burst", action="store_true", help="run the queued jobs, then exit")
    args = parser.parse_args(argv)
    from rq import Queue, SimpleWorker

    env = bootstrap_app(args.config_uri)
    registry = env["registry"]
    settings = registry.settings
    if not settings["nexus.redis_url"]:
        sys.exit("error: nexus-worker needs Redis (nexus.redis_url / REDIS_URL)")
    _REGISTRY = registry
    # The queue's own connection: a worker blocks on it for new jobs (no short socket timeout).
    client = redis_py.Redis.from_url(settings["nexus.redis_url"], socket_connect_timeout=5,
                                     health_check_interval=30)
    stop = threading.Event()
    fail_abandoned_jobs(registry)
    if not args.burst:
        if settings["recommender.retrain_interval"]:
            schedule_training(registry, client)
        threading.Thread(target=_scheduler, args=(registry, client, stop), daemon=True).start()
    worker = SimpleWorker([Queue(settings["jobs.queue_name"], connection=client)], connection=client)
    try:
        worker.work(burst=args.burst, logging_level=logging.getLevelName(logging.getLogger().level))
    finally:
        stop.set()
        env["closer"]()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
