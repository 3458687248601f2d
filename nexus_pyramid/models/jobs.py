"""Background jobs, the recommender's trained models, and what was served (online evaluation)."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, LargeBinary, SmallInteger, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from .meta import Base, UTCDateTime, utcnow

JOB_KINDS = ("train_recommender", "import")
JOB_STATES = ("queued", "running", "done", "failed")


class Job(Base):
    """One unit of background work: queued by the API, the CLI or the schedule; run by a worker.

    ``payload`` holds a job's input while it waits (an uploaded CSV); it is emptied when the
    job ends. ``user_id`` is the owner of a user's job (an import): the job goes with the user.
    """

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_kind_created", "kind", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"),
                                                      nullable=True, index=True)
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    payload: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    result: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    duration: Mapped[float | None] = mapped_column(Float, nullable=True)  # seconds


class RecommenderModel(Base):
    """A trained model, an immutable versioned artifact (``artifact``: numpy .npz bytes).

    The newest one serves; the training job keeps the last few so an operator can see the
    history (and a bad version can be deleted to fall back to the one before).
    """

    __tablename__ = "recommender_models"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    trained_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True)
    algorithm: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    stats: Mapped[dict] = mapped_column(JSON, default=dict)
    artifact: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)


class ServedRecommendation(Base):
    """One recommendation shown to a user (a sampled page's first positions), for online evaluation.

    Compact: ids and small integers only. A later like or watch of the movie by the user
    within the attribution window counts as a hit for the model version that ranked it.
    """

    __tablename__ = "served_recommendations"
    __table_args__ = (Index("ix_served_recommendations_user_movie", "user_id", "movie_id"),
                      Index("ix_served_recommendations_version_served", "model_version", "served_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    movie_id: Mapped[int] = mapped_column(Integer, ForeignKey("movies.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(SmallInteger)
    model_version: Mapped[int] = mapped_column(Integer)  # 0: no trained model (fallback ranking)
    served_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
