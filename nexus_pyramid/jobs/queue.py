"""The job queue: RQ on Redis (workers: ``nexus-worker``), or synchronous in the web process.

Why RQ: jobs here are few and long (a training, an import), need one Redis we already run,
and no routing, chords or result backend; RQ is the smallest well-kept queue that does
this (Celery brings a broker abstraction and its own beat; Dramatiq needs middleware for
the same). Job state lives in our ``jobs`` table, not in RQ: RQ only carries the job id.

``jobs.mode = sync`` (development, tests, ``make run``): the job runs in the process right
after the transaction that queued it commits, with no extra service. ``rq``: the job id is
pushed on the Redis queue after commit; if Redis refuses it, the job is marked failed at
once (its owner sees why) rather than staying queued forever.
"""
from __future__ import annotations

import logging

from ..interfaces import IRedis
from .runner import mark_failed, run_job
from .tasks import FUNCTIONS

log = logging.getLogger(__name__)
QUEUE_UNAVAILABLE = "The job queue is unavailable; try again later."


def perform(job_id: str) -> str:
    """What an RQ worker runs: the job with this id, with the worker's app (see scripts/worker.py)."""
    from uuid import UUID

    from ..scripts.worker import worker_registry

    return run_job(worker_registry(), UUID(job_id), FUNCTIONS)


class JobQueue:
    def __init__(self, registry, mode: str, queue_name: str, timeout: int):
        self.registry = registry
        self.mode = mode
        self.queue_name = queue_name
        self.timeout = timeout

    def submit(self, job_id) -> None:
        """Hand over a committed job (call after commit)."""
        if self.mode == "sync":
            run_job(self.registry, job_id, FUNCTIONS)
            return
        redis = self.registry.queryUtility(IRedis)
        if redis is None:
            self._refused(job_id, "no Redis configured")
            return

        def push(client):
            from rq import Queue

            Queue(self.queue_name, connection=client).enqueue_call(
                "nexus_pyramid.jobs.queue.perform", args=(str(job_id),), timeout=self.timeout,
                job_id=f"nexus-{job_id}", result_ttl=3600, failure_ttl=7 * 24 * 3600)
            return True

        if not redis.call(push, fallback=lambda: False, operation="job enqueue"):
            self._refused(job_id, "Redis unavailable")

    def _refused(self, job_id, why: str) -> None:
        from ..interfaces import IDBSessionFactory, find_service

        log.warning("job %s not queued: %s", job_id, why)
        mark_failed(find_service(self.registry, IDBSessionFactory), job_id, QUEUE_UNAVAILABLE)
