"""nexus-jobs <ini> start KIND [--wait] | list [--kind KIND]: background jobs from the command line.

``start train_recommender`` queues a training (run by ``nexus-worker``, or at once with
``jobs.mode = sync``); ``--wait`` prints its progress until it ends and exits non-zero if
it failed.
"""
from __future__ import annotations

import argparse
import sys
import time

import transaction

from ..interfaces import IDBSessionFactory, IJobQueue, find_service
from ..jobs.service import JobService
from ..models import Job
from .common import bootstrap_app


def start_job(registry, kind: str, params: dict | None = None):
    """Queue a job outside a request; it is handed to the queue once committed. Returns its id."""
    session = find_service(registry, IDBSessionFactory)()
    manager = transaction.TransactionManager(explicit=True)
    import zope.sqlalchemy

    zope.sqlalchemy.register(session, transaction_manager=manager)
    with manager:
        job_id = JobService(session, find_service(registry, IJobQueue), manager).start(kind, params).id
    session.close()
    return job_id


def job_state(registry, job_id) -> Job:
    session = find_service(registry, IDBSessionFactory)()
    try:
        return session.get(Job, job_id)
    finally:
        session.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config_uri")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start")
    start.add_argument("kind")
    start.add_argument("--wait", action="store_true")
    listing = sub.add_parser("list")
    listing.add_argument("--kind")
    args = parser.parse_args(argv)
    with bootstrap_app(args.config_uri) as env:
        registry = env["registry"]
        if args.command == "list":
            session = find_service(registry, IDBSessionFactory)()
            for job in JobService(session, None, None).list(args.kind, 1, 50).items:
                print(f"{job.id} {job.kind:18} {job.state:8} {job.progress:4.0%} {job.created_at:%Y-%m-%d %H:%M:%S} "
                      f"{job.duration or '':>8} {job.result or job.error or ''}")
            session.close()
            return 0
        from ..errors import ValidationError

        try:
            job_id = start_job(registry, args.kind)
        except ValidationError as exc:
            sys.exit(f"error: {exc.details}")
        print(f"job {job_id} queued")
        if not args.wait:
            return 0
        # Bounded: a job runs at most jobs.timeout; one still queued or running a minute later
        # has no worker (none started, or it died).
        deadline = time.monotonic() + registry.settings["jobs.timeout"] + 60
        while True:
            job = job_state(registry, job_id)
            print(f"\r{job.state:8} {job.progress:6.1%}", end="", flush=True)
            if job.state in ("done", "failed"):
                print()
                print(job.result if job.state == "done" else f"error: {job.error}")
                return 0 if job.state == "done" else 1
            if time.monotonic() > deadline:
                print()
                print(f"error: still {job.state} after {registry.settings['jobs.timeout'] + 60} s: is nexus-worker running?")
                return 1
            time.sleep(0.5)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
