"""Running one job: state, progress, timings, result and error in the ``jobs`` table.

A job's function gets a ``JobContext``: ``ctx.transaction()`` opens a short transaction
(reading the input, writing the result), ``ctx.progress(fraction)`` records progress in a
transaction of its own (at most every ``PROGRESS_EVERY`` seconds). Nothing is held open
while the job computes. The function's last transaction and the job's ``done`` state are
one commit (``ctx.finish(session, result)``): if anything fails before it, nothing the job
produced is visible (a failed training leaves the previous model serving) and the job is
``failed`` with its error.
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager

from sqlalchemy import update

from ..interfaces import IDBSessionFactory, find_service
from ..models import Job
from ..models.meta import utcnow

log = logging.getLogger(__name__)
PROGRESS_EVERY = 0.5
ERROR_LENGTH = 500


class JobFailed(Exception):
    """A job's expected failure: its message is the job's error, shown to its owner."""


class JobContext:
    def __init__(self, registry, job: Job, session_factory):
        self.registry = registry
        self.job_id = job.id
        self.kind = job.kind
        self.params = dict(job.params or {})
        self.user_id = job.user_id
        self.factory = session_factory
        self._last_progress = 0.0
        self.finished = False

    @contextmanager
    def transaction(self):
        session = self.factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def progress(self, fraction: float, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_EVERY:
            return
        self._last_progress = now
        try:
            with self.transaction() as session:
                session.execute(update(Job).where(Job.id == self.job_id)
                                .values(progress=max(0.0, min(1.0, float(fraction)))))
        except Exception:  # noqa: BLE001 (progress is informative; the job goes on)
            log.warning("job %s: progress not recorded", self.job_id, exc_info=True)

    def finish(self, session, result: dict) -> None:
        """Mark the job done in ``session``'s transaction (commit it with the job's output)."""
        job = session.get(Job, self.job_id)
        finished = utcnow()
        job.state, job.progress, job.result, job.finished_at = "done", 1.0, result, finished
        job.duration = round((finished - job.started_at).total_seconds(), 3) if job.started_at else None
        job.payload = None
        self.finished = True


def run_job(registry, job_id, functions: dict) -> str:
    """Run a queued job to its end; returns its final state. Never raises for the job's own failure."""
    factory = find_service(registry, IDBSessionFactory)
    session = factory()
    try:
        # Claimed in one statement: two deliveries of one id (a requeue, a race) run it once.
        claimed = session.execute(update(Job).where(Job.id == job_id, Job.state == "queued")
                                  .values(state="running", started_at=utcnow(), progress=0.0)
                                  .execution_options(synchronize_session=False)).rowcount
        session.commit()
        job = session.get(Job, job_id)
        if not claimed:
            return job.state if job is not None else "missing"  # run already, or its user was deleted
        ctx = JobContext(registry, job, factory)
    finally:
        session.close()
    started = time.perf_counter()
    try:
        function = functions[ctx.kind]
        function(ctx)
        if not ctx.finished:
            with ctx.transaction() as session:
                ctx.finish(session, {})
        log.info("job %s (%s) done in %.2fs", job_id, ctx.kind, time.perf_counter() - started)
        return "done"
    except Exception as exc:  # noqa: BLE001 (every failure is recorded on the job)
        if isinstance(exc, JobFailed):
            message = str(exc)
            log.info("job %s (%s) failed: %s", job_id, ctx.kind, message)
        else:  # its text may carry SQL or addresses: the log has it, the job's owner does not
            message = f"The job failed unexpectedly ({type(exc).__name__}); the worker's log has the details."
            log.exception("job %s (%s) failed", job_id, ctx.kind)
        mark_failed(factory, job_id, message)
        return "failed"


def fail_abandoned(factory, older_than: float) -> int:
    """Jobs left ``running`` longer than ``older_than`` seconds (their worker died: killed, out
    of memory, redeployed) are failed, so that nobody waits on them. Returns how many."""
    from datetime import timedelta

    session = factory()
    try:
        now = utcnow()
        count = session.execute(
            update(Job).where(Job.state == "running", Job.started_at < now - timedelta(seconds=older_than))
            .values(state="failed", finished_at=now, payload=None,
                    error="The worker stopped before the job ended; start it again.")
            .execution_options(synchronize_session=False)).rowcount
        session.commit()
        return count
    finally:
        session.close()


def mark_failed(factory, job_id, message: str) -> None:
    session = factory()
    try:
        job = session.get(Job, job_id)
        if job is not None:
            finished = utcnow()
            job.state, job.error, job.finished_at, job.payload = "failed", message[:ERROR_LENGTH], finished, None
            job.duration = round((finished - job.started_at).total_seconds(), 3) if job.started_at else None
            session.commit()
    except Exception:  # noqa: BLE001
        session.rollback()
        log.exception("job %s: its failure could not be recorded", job_id)
    finally:
        session.close()


def run_here(registry, kind: str, params: dict | None = None, functions: dict | None = None) -> Job:
    """Record a new job of ``kind`` and run it in this process now, as a worker would; the
    finished row (state, result, error). For benches and one-off runs that bypass the queue."""
    import uuid

    from .tasks import FUNCTIONS

    factory = find_service(registry, IDBSessionFactory)
    session = factory()
    try:
        job = Job(id=uuid.uuid4(), kind=kind, state="queued", progress=0.0, params=params or {})
        session.add(job)
        session.commit()
        job_id = job.id
    finally:
        session.close()
    run_job(registry, job_id, functions or FUNCTIONS)
    session = factory()
    try:
        return session.get(Job, job_id)
    finally:
        session.close()
