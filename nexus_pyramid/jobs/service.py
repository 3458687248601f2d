"""Jobs for the API, the console and the scripts: list, start, get; the serving model's version."""
from __future__ import annotations

import uuid

from sqlalchemy import func, select

from ..errors import NotFound, ValidationError
from ..models import Job, RecommenderModel
from ..models.meta import take_turns
from ..services.users import Page
from .tasks import ADMIN_KINDS, FUNCTIONS, SINGLETON_KINDS


class JobService:
    def __init__(self, dbsession, queue, transaction_manager):
        self.db = dbsession
        self.queue = queue
        self.tm = transaction_manager

    def list(self, kind: str | None = None, page: int = 1, per_page: int = 20, user_id=None) -> Page:
        query = select(Job)
        if kind:
            query = query.where(Job.kind == kind)
        if user_id is not None:
            query = query.where(Job.user_id == user_id)
        total = self.db.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        rows = self.db.execute(query.order_by(Job.created_at.desc(), Job.id)
                               .offset((page - 1) * per_page).limit(per_page)).scalars().all()
        return Page(list(rows), page, per_page, total)

    def get(self, job_id, user_id=None) -> Job:
        """The job; NotFound if unknown (or, with ``user_id``, someone else's)."""
        try:
            job_id = job_id if isinstance(job_id, uuid.UUID) else uuid.UUID(str(job_id))
        except ValueError:
            raise NotFound("No such job.") from None
        job = self.db.get(Job, job_id)
        if job is None or (user_id is not None and job.user_id != user_id):
            raise NotFound("No such job.")
        return job

    def start(self, kind: str, params: dict | None = None, user_id=None, payload: bytes | None = None,
              admin: bool = True) -> Job:
        """Queue a job: it is handed to the queue when the current transaction commits."""
        if kind not in FUNCTIONS or (admin and kind not in ADMIN_KINDS):
            raise ValidationError.field("kind", f"Unknown job kind; one of: {', '.join(ADMIN_KINDS)}")
        if kind in SINGLETON_KINDS:  # a second training would redo all the work
            # Two starts at once would each find none pending and each add one: starts of a kind
            # take turns until the transaction that adds the job commits.
            take_turns(self.db, f"jobs:{kind}")
            pending = self.db.execute(select(Job).where(Job.kind == kind, Job.state.in_(("queued", "running")))
                                      .order_by(Job.created_at).limit(1)).scalar_one_or_none()
            if pending is not None:
                return pending
        job = Job(id=uuid.uuid4(), kind=kind, state="queued", progress=0.0, params=params or {},
                  user_id=user_id, payload=payload)
        self.db.add(job)
        self.db.flush()
        job_id, queue = job.id, self.queue

        def hand_over(committed):
            if committed:
                queue.submit(job_id)

        self.tm.get().addAfterCommitHook(hand_over)
        return job

    def current_model(self) -> dict | None:
        """{version, trained_at, algorithm, stats} of the newest model, or None before the first training."""
        row = self.db.execute(select(RecommenderModel.version, RecommenderModel.trained_at, RecommenderModel.algorithm,
                                     RecommenderModel.stats).order_by(RecommenderModel.version.desc()).limit(1)).first()
        if row is None:
            return None
        return {"version": row.version, "trained_at": row.trained_at, "algorithm": row.algorithm, "stats": row.stats}
